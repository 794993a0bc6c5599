package history

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/eventpipe/eventpipe/internal/apiserver"
	"github.com/eventpipe/eventpipe/internal/chserver"
	"github.com/eventpipe/eventpipe/internal/chserver/chtest"
	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/registry/event"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
	"github.com/eventpipe/eventpipe/internal/store/clickhouse/storetest"
	"github.com/eventpipe/eventpipe/internal/testenv"
)

// Store starts a ClickHouse server for tb and returns a migrated store on
// it: in dir when dir is not empty (kept, so that a later run reuses the
// history), else in a temporary directory.
func Store(tb testing.TB, dir string) *chstore.Store {
	tb.Helper()
	if dir == "" {
		return storetest.Migrated(tb, chtest.ForTest(tb))
	}
	srv, err := chserver.Start(context.Background(), chserver.Options{Dir: dir})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = srv.Stop() })
	return storetest.Migrated(tb, srv)
}

// Ensure reuses the history in s when it is Reusable for o, and fills one
// otherwise; it logs which, and what the dataset is.
func Ensure(tb testing.TB, s *chstore.Store, o Options) Result {
	tb.Helper()
	ctx := context.Background()
	var r Result
	var err error
	if Reusable(ctx, s, o) {
		r, err = Describe(ctx, s)
		tb.Logf("reusing the stored history")
	} else {
		r, err = Fill(ctx, s, o)
		tb.Logf("generated the history in %s", r.Took.Round(time.Second))
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Logf("dataset: %d states, %d bytes on disk (%.1f B/event)", r.Rows, r.BytesOnDisk, r.BytesPerEvent())
	return r
}

// committed says every state up to the watermark is committed: nothing is
// written while a read benchmark runs.
type committed uint64

func (w committed) Load() uint64                          { return uint64(w) }
func (w committed) WaitFor(context.Context, uint64) error { return nil }

// emptyLog: nothing is written, so the log holds nothing after the
// watermark; a consistent list asks it only for its end (Bounds).
type emptyLog struct{ event.Log }

func (emptyLog) Bounds(context.Context) (uint64, uint64, error) { return 1, 1, nil }

func (emptyLog) PublishAll(context.Context, []*eventlog.Record, []string) error {
	return errors.New("a read benchmark's API server takes no writes")
}

// Serve runs the API server (with the web UI) in-process over s, reading
// as of watermark and refusing writes, with tokens as its token file's
// lines; it returns the server's https URL once it serves.
func Serve(tb testing.TB, s *chstore.Store, watermark uint64, tokens string) string {
	tb.Helper()
	dir := tb.TempDir()
	tokenFile := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(tokenFile, []byte(tokens), 0o600); err != nil {
		tb.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	o := apiserver.NewOptions()
	o.SecureServing.Listener = l
	o.SecureServing.BindAddress = net.ParseIP("127.0.0.1")
	o.SecureServing.BindPort = l.Addr().(*net.TCPAddr).Port
	o.SecureServing.ServerCert.CertDirectory = filepath.Join(dir, "certs")
	o.TokenAuthFile = tokenFile
	cfg, err := o.Config(apiserver.Backends{Log: emptyLog{}, Index: event.ClickHouseIndex{Store: s}, History: s, Watermark: committed(watermark)})
	if err != nil {
		tb.Fatal(err)
	}
	srv, err := cfg.Complete().New()
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	tb.Cleanup(func() { cancel(); <-done })
	go func() { defer close(done); _ = srv.Run(ctx) }()
	url := "https://" + l.Addr().String()
	hc := &http.Client{Transport: Insecure()}
	testenv.WaitFor(tb, "the API server serving /ui/", time.Minute, func() (bool, string) {
		resp, err := hc.Get(url + "/ui/")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, fmt.Sprint(resp.Status)
	})
	return url
}

// Insecure trusts the server's self-signed certificate (loopback only).
func Insecure() *http.Transport {
	return &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
}
