package cli

import (
	"context"
	"log/slog"

	"github.com/spf13/pflag"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/roles"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
)

// connFlags are the flags of the connections a role's subcommand opens
// before it builds the role: NATS and the EVENTS stream always, ClickHouse
// for the roles that read or write the index.
type connFlags struct {
	nats   eventlog.ClientConfig
	stream eventlog.Config
	store  *chstore.Config // nil: the role does not use ClickHouse
}

func newConnFlags(withStore bool) *connFlags {
	f := &connFlags{nats: eventlog.DefaultClientConfig(), stream: eventlog.DefaultConfig()}
	if withStore {
		s := chstore.DefaultConfig()
		f.store = &s
	}
	return f
}

func (f *connFlags) AddFlags(fs *pflag.FlagSet) {
	f.nats.AddFlags(fs)
	f.stream.AddFlags(fs)
	if f.store != nil {
		f.store.AddFlags(fs)
	}
}

// start validates the connection flags with the role's own problems (all
// reported at once), makes the logger, and connects as name, opening the
// store when the role has one. The caller closes the connections.
func (f *connFlags) start(ctx context.Context, g *globalOptions, name string, problems ...[]error) (*roles.Conns, *slog.Logger, error) {
	problems = append(problems, f.nats.Validate(), f.stream.Validate())
	if f.store != nil {
		problems = append(problems, f.store.Validate())
	}
	if err := validate(problems...); err != nil {
		return nil, nil, err
	}
	log, err := g.logger()
	if err != nil {
		return nil, nil, err
	}
	c, err := roles.Connect(ctx, name, f.nats, f.stream)
	if err != nil {
		return nil, nil, err
	}
	if f.store != nil {
		if err := c.OpenStore(ctx, *f.store); err != nil {
			c.Close()
			return nil, nil, err
		}
	}
	return c, log, nil
}
