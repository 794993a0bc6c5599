// Package ui serves eventpipe's web UI: static files (HTML, JavaScript,
// CSS and the vendored chart library) embedded in the binary. The files
// hold no data; the page calls the ordinary API paths with the user's own
// bearer token (or through `kubectl proxy`), so the UI shows exactly what
// the API gives that user.
package ui
