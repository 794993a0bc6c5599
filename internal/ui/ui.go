package ui

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

// Prefix is the path under which the UI is served.
const Prefix = "/ui/"

//go:embed static
var static embed.FS

// files is the embedded tree rooted at static/.
var files = func() fs.FS {
	f, err := fs.Sub(static, "static")
	if err != nil {
		panic("BUG: " + err.Error())
	}
	return f
}()

// Files returns the UI's embedded files, rooted where Prefix serves them.
func Files() fs.FS { return files }

// contentSecurityPolicy lets the page load only its own files and talk only
// to its own origin: no inline scripts, no third-party hosts.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Wrap returns a handler that answers GET and HEAD requests for the
// embedded files under Prefix (and redirects the bare "/ui" there) itself,
// and passes every other request to next, the API server's full handler
// chain with authentication and authorization. Only embedded files are
// served without credentials: a path under Prefix that names no file is a
// 404 here, never a request to next, and other methods are refused.
func Wrap(next http.Handler) http.Handler {
	fileServer := http.FileServerFS(files)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if p != "/ui" && !strings.HasPrefix(p, Prefix) {
			next.ServeHTTP(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "the UI's files are read-only", http.StatusMethodNotAllowed)
			return
		}
		if p == "/ui" {
			http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
			return
		}
		name := strings.TrimPrefix(path.Clean(p), "/ui")
		name = strings.TrimPrefix(name, "/")
		if name == "" {
			name = "index.html"
		}
		if st, err := fs.Stat(files, name); err != nil || st.IsDir() {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		// The page and its modules change with the binary: revalidate.
		h.Set("Cache-Control", "no-cache")
		r2 := r.Clone(r.Context())
		r2.URL.Path = "/" + name
		if name == "index.html" {
			// FileServer redirects /index.html to ./; serve it as the root.
			r2.URL.Path = "/"
		}
		fileServer.ServeHTTP(w, r2)
	})
}
