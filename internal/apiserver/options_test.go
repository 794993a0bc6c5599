package apiserver

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestOptionsCursorKey(t *testing.T) {
	key := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", 32)))
	cases := []struct {
		name    string
		env     string
		set     string
		wantErr bool
	}{
		{name: "unset: a random key per process"},
		{name: "from the environment", env: key},
		{name: "set before Complete wins over the environment", env: "not base64", set: key},
		{name: "not base64", env: "not base64!", wantErr: true},
		{name: "too short", env: base64.StdEncoding.EncodeToString([]byte("short")), wantErr: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv(CursorKeyEnv, c.env)
			o := NewOptions()
			o.CursorKey = c.set
			o.Complete()
			var found []string
			for _, err := range o.Validate() {
				if strings.Contains(err.Error(), CursorKeyEnv) {
					found = append(found, err.Error())
				}
			}
			if c.wantErr {
				require.Len(t, found, 1)
				return
			}
			require.Empty(t, found)
		})
	}
}
