package eventlog

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/pflag"
)

// ClientConfig says how to reach NATS.
type ClientConfig struct {
	URL            string
	CredsFile      string
	ConnectTimeout time.Duration
	Name           string
}

// DefaultClientConfig returns the documented defaults.
func DefaultClientConfig() ClientConfig {
	return ClientConfig{URL: nats.DefaultURL, ConnectTimeout: 5 * time.Second}
}

// AddFlags adds the client's flags to fs.
func (c *ClientConfig) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.URL, "nats.url", c.URL, "NATS server URL(s), comma-separated")
	fs.StringVar(&c.CredsFile, "nats.creds", c.CredsFile, "NATS credentials file (optional)")
	fs.DurationVar(&c.ConnectTimeout, "nats.connect-timeout", c.ConnectTimeout, "how long to wait for the first NATS connection")
}

// Validate returns every problem with c.
func (c *ClientConfig) Validate() []error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New("--nats.url must not be empty"))
	}
	for _, u := range strings.Split(c.URL, ",") {
		if c.URL == "" {
			break
		}
		if p, err := url.Parse(strings.TrimSpace(u)); err != nil || p.Host == "" {
			errs = append(errs, fmt.Errorf("--nats.url %q is not a URL like nats://host:4222", u))
		}
	}
	if c.ConnectTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--nats.connect-timeout must be positive, got %s", c.ConnectTimeout))
	}
	return errs
}

// Connect opens a connection that reconnects for ever once established, and
// a JetStream handle on it. The first connection must succeed within
// ConnectTimeout: a wrong address should fail start-up, not hang it.
func (c *ClientConfig) Connect() (*nats.Conn, jetstream.JetStream, error) {
	opts := []nats.Option{nats.Name(c.Name), nats.Timeout(c.ConnectTimeout), nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second)}
	if c.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(c.CredsFile))
	}
	nc, err := nats.Connect(c.URL, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to NATS at %s (--nats.url): %w", c.URL, err)
	}
	js, err := jetstream.New(nc, AsyncAckTimeout)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("open JetStream at %s: %w", c.URL, err)
	}
	return nc, js, nil
}

// AsyncAckTimeout is the JetStream option every server process opens its
// handle with: an asynchronous publish (PublishAll) whose acknowledgement
// never comes, because the connection dropped, fails after a minute
// instead of staying pending in the client for ever.
var AsyncAckTimeout = jetstream.WithPublishAsyncTimeout(time.Minute)
