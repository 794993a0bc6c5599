package ui

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestVendoredFilesMatchChecksums checks every file under static/vendor
// against static/vendor/SHA256SUMS, which `make ui-vendor` writes from the
// npm package it verified, and that the list names every vendored file.
func TestVendoredFilesMatchChecksums(t *testing.T) {
	sums, err := fs.ReadFile(files, "vendor/SHA256SUMS")
	require.NoError(t, err)
	listed := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(string(sums)))
	for sc.Scan() {
		want, name, ok := strings.Cut(sc.Text(), "  ")
		require.True(t, ok, "malformed line %q", sc.Text())
		b, err := fs.ReadFile(files, "vendor/"+name)
		require.NoError(t, err, "SHA256SUMS names %s", name)
		got := sha256.Sum256(b)
		require.Equal(t, want, hex.EncodeToString(got[:]), "vendor/%s differs from SHA256SUMS: run make ui-vendor", name)
		listed[name] = true
	}
	require.NotEmpty(t, listed)
	require.NoError(t, fs.WalkDir(files, "vendor", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || p == "vendor/SHA256SUMS" {
			return err
		}
		require.True(t, listed[strings.TrimPrefix(p, "vendor/")], "%s is not in SHA256SUMS", p)
		return nil
	}))
	_, err = fs.Stat(files, "vendor/uplot/LICENSE")
	require.NoError(t, err, "the vendored library's license must ship with it")
}

func TestWrap(t *testing.T) {
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot) // stands for the authenticated chain
	})
	h := Wrap(api)
	for _, tc := range []struct {
		name, method, path string
		code               int
		body               string
	}{
		{"index", "GET", "/ui/", 200, "<title>eventpipe"},
		{"module", "GET", "/ui/app.js", 200, "import uPlot"},
		{"vendored", "GET", "/ui/vendor/uplot/uPlot.esm.js", 200, "uPlot"},
		{"head", "HEAD", "/ui/", 200, ""},
		{"bare prefix redirects", "GET", "/ui", 301, ""},
		{"no such file is a 404, not the API", "GET", "/ui/api/v1/events", 404, ""},
		{"dot-dot stays inside", "GET", "/ui/../api/v1/events", 404, ""},
		{"directory", "GET", "/ui/vendor/", 404, ""},
		{"writes refused", "POST", "/ui/", 405, ""},
		{"API paths go to the chain", "GET", "/api/v1/events", 418, ""},
		{"lookalike prefix goes to the chain", "GET", "/uix", 418, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
			require.Equal(t, tc.code, rec.Code, rec.Body.String())
			require.Contains(t, rec.Body.String(), tc.body)
			if tc.code == 200 {
				require.Contains(t, rec.Header().Get("Content-Security-Policy"), "default-src 'none'")
			}
		})
	}
}
