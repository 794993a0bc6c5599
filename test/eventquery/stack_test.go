// Package eventquery tests EventQuery and EventFacetQuery end to end: the
// eventpipe stack in dev mode, real kubectl from .tools/bin and the
// kubectl-eventquery plugin, against brute-force answers over the events
// the test wrote.
package eventquery

import (
	"encoding/base64"
	"testing"

	"k8s.io/client-go/kubernetes"

	"github.com/eventpipe/eventpipe/internal/apiserver"
	"github.com/eventpipe/eventpipe/internal/devenv"
	"github.com/eventpipe/eventpipe/internal/devenv/devtest"
)

// cursorKey is the key the stack signs continue tokens with, so that the
// test can make an expired token.
var cursorKey = []byte("eventquery-e2e-test-key-0123456789abcdef")

// startStack runs every role in-process (dev mode, no simulated cluster).
func startStack(t *testing.T) (*kubernetes.Clientset, *devenv.Env) {
	t.Helper()
	t.Setenv(apiserver.CursorKeyEnv, base64.StdEncoding.EncodeToString(cursorKey))
	s := devtest.New(t)
	return s.Client(), s.Env
}
