package clientgo

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/eventpipe/eventpipe/internal/devenv/devtest"
	"github.com/eventpipe/eventpipe/internal/kubetest"
)

// TestCredentialsSurviveRestart: a client made before eventpipe dev
// restarts on the same data directory (an informer, a controller, a shell
// that exported the token) must still be let in afterwards. Every informer
// across a restart depends on it.
func TestCredentialsSurviveRestart(t *testing.T) {
	s := devtest.New(t)
	held := devtest.NewClient(t, s.Cfg)
	ctx := context.Background()
	_, err := held.CoreV1().Events("default").List(ctx, metav1.ListOptions{})
	require.NoError(t, err)

	s.Restart()
	_, err = held.CoreV1().Events("default").List(ctx, metav1.ListOptions{})
	require.NoError(t, err, "the admin token from before the restart is refused; the kubeconfig now holds another one (token changed: %t)",
		s.CurrentConfig().BearerToken != s.Cfg.BearerToken)
}

// TestInvalidTokenIsUnauthorized: a bearer token the server does not know
// gets 401 Unauthorized from kube-apiserver, which is what makes client-go
// refresh rotating credentials (exec plugins, token files), not 403 as
// system:anonymous.
func TestInvalidTokenIsUnauthorized(t *testing.T) {
	kube := kubetest.StartCluster(t, kubetest.Options{})
	ep := devtest.New(t)
	answer := func(cfg *rest.Config) *apierrors.StatusError {
		cfg = rest.CopyConfig(cfg)
		cfg.BearerToken, cfg.BearerTokenFile = "not-a-known-token", ""
		_, err := devtest.NewClient(t, cfg).CoreV1().Events("default").List(context.Background(), metav1.ListOptions{})
		require.Error(t, err)
		se, ok := err.(*apierrors.StatusError)
		require.True(t, ok, "%T %v", err, err)
		return se
	}
	want, got := answer(kube.Config), answer(ep.Cfg)
	require.True(t, apierrors.IsUnauthorized(want), "kube-apiserver: %v", want)
	require.Equal(t, want.ErrStatus.Code, got.ErrStatus.Code, "eventpipe answered: %v", got)
	require.Equal(t, want.ErrStatus.Reason, got.ErrStatus.Reason)
	require.Equal(t, want.Error(), got.Error())
}
