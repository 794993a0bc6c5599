package apiserver

import (
	"encoding/base64"
	"fmt"
	"os"

	"k8s.io/apiserver/pkg/registry/rest"

	"github.com/eventpipe/eventpipe/internal/registry/eventfacetquery"
	"github.com/eventpipe/eventpipe/internal/registry/eventquery"
)

// CursorKeyEnv holds the key (standard base64, at least 32 bytes decoded)
// that signs EventQuery continue tokens. It is an environment variable,
// like the ClickHouse password, because it is a secret. Unset: a random
// key per process, which is fine for one replica; replicas behind one
// Service must share a key, or a token issued by one fails on another.
const CursorKeyEnv = "EVENTPIPE_EVENTQUERY_CURSOR_KEY"

// historyIndex is what both query resources need from the index; the
// ClickHouse store provides it.
type historyIndex interface {
	eventquery.Index
	eventfacetquery.Index
}

func init() {
	activityResources = append(activityResources, addEventQueries)
}

// addEventQueries serves eventqueries and eventfacetqueries when the index
// can answer history queries.
func addEventQueries(c CompletedConfig, storage map[string]rest.Storage) error {
	idx, ok := c.backends.Index.(historyIndex)
	if !ok {
		return nil
	}
	o := eventquery.DefaultOptions()
	if s := os.Getenv(CursorKeyEnv); s != "" {
		key, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(key) < 32 {
			return fmt.Errorf("%s must be standard base64 of at least 32 bytes (e.g. from `head -c 32 /dev/urandom | base64`)", CursorKeyEnv)
		}
		o.CursorKey = key
	}
	signer, err := eventquery.NewSigner(o.CursorKey, o.CursorTTL)
	if err != nil {
		return err
	}
	// One window for every caller until tiers take over (the tiers issue
	// plugs its per-tenant QueryWindow in here).
	var window eventquery.QueryWindow = eventquery.FixedQueryWindow{Window: eventquery.DefaultQueryWindow, Tier: "default"}
	if c.backends.Tiers != nil {
		window = c.backends.Tiers
	}
	storage["eventqueries"] = eventquery.NewREST(eventquery.Deps{
		Index: idx, Watermark: c.backends.Watermark, Scopes: c.scopes, Window: window, Signer: signer, Limits: o.Limits,
	})
	storage["eventfacetqueries"] = eventfacetquery.NewREST(eventfacetquery.Deps{
		Index: idx, Watermark: c.backends.Watermark, Scopes: c.scopes, Window: window, Limits: o.Limits,
	})
	return nil
}
