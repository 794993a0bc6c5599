package tenancy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/eventpipe/eventpipe/internal/apiserver"
	"github.com/eventpipe/eventpipe/internal/devenv"
	"github.com/eventpipe/eventpipe/internal/devenv/devtest"
)

// issue returns a certificate signed by ca (self-signed when ca is nil).
func issue(t *testing.T, tmpl *x509.Certificate, ca *x509.Certificate, caKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey, []byte, []byte) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	parent, signer := tmpl, key
	if ca != nil {
		parent, signer = ca, caKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	kb, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	return cert, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

// TestClientCertificates: a standalone server with --client-ca-file
// authenticates client certificates (CN = user, O = groups): one in a
// platform group may read; one without a tenant scope is refused with 403
// saying so; one signed by another CA is 401.
func TestClientCertificates(t *testing.T) {
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test-client-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	ca, caKey, caPEM, _ := issue(t, caTmpl, nil, nil)
	client := func(serial int64, cn string, orgs []string, signer *x509.Certificate, signerKey *ecdsa.PrivateKey) ([]byte, []byte) {
		_, _, c, k := issue(t, &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn, Organization: orgs},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, signer, signerKey)
		return c, k
	}
	caFile := filepath.Join(t.TempDir(), "client-ca.crt")
	require.NoError(t, os.WriteFile(caFile, caPEM, 0o600))

	s := devtest.New(t, func(o *devenv.Options) {
		o.ConfigureAPIServer = func(a *apiserver.Options) { a.ClientCert.ClientCA = caFile }
	})
	ctx := context.Background()
	withCert := func(cert, key []byte) *rest.Config {
		cfg := rest.AnonymousClientConfig(s.CurrentConfig())
		cfg.CertData, cfg.KeyData = cert, key
		return cfg
	}

	adminCert, adminKey := client(2, "ops", []string{"system:masters"}, ca, caKey)
	_, err := devtest.NewClient(t, withCert(adminCert, adminKey)).CoreV1().Events("demo").List(ctx, metav1.ListOptions{})
	require.NoError(t, err, "a certificate in a platform group is the platform")

	userCert, userKey := client(3, "carol", []string{"developers"}, ca, caKey)
	_, err = devtest.NewClient(t, withCert(userCert, userKey)).CoreV1().Events("demo").List(ctx, metav1.ListOptions{})
	require.True(t, apierrors.IsForbidden(err), "want 403, got %v", err)
	require.Contains(t, err.Error(), `User "carol" cannot list resource "events"`)
	require.Contains(t, err.Error(), "the user has no tenant scope")

	otherCA, otherKey, _, _ := issue(t, &x509.Certificate{SerialNumber: big.NewInt(4), Subject: pkix.Name{CommonName: "other-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}, nil, nil)
	strangerCert, strangerKey := client(5, "mallory", []string{"system:masters"}, otherCA, otherKey)
	_, err = devtest.NewClient(t, withCert(strangerCert, strangerKey)).CoreV1().Events("demo").List(ctx, metav1.ListOptions{})
	require.True(t, apierrors.IsUnauthorized(err), "a certificate from another CA is 401, as in kube-apiserver: %v", err)
}
