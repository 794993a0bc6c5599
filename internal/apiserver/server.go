package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apiserver/pkg/registry/rest"
	genericapiserver "k8s.io/apiserver/pkg/server"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	"k8s.io/kube-openapi/pkg/spec3"
	"k8s.io/kube-openapi/pkg/validation/spec"
	netutils "k8s.io/utils/net"

	"github.com/eventpipe/eventpipe/internal/apiserver/openapi"
	"github.com/eventpipe/eventpipe/internal/registry/event"
	"github.com/eventpipe/eventpipe/internal/tenancy"
)

// KubernetesVersion is the kube-apiserver release whose Events API
// eventpipe reproduces; /version reports it.
const KubernetesVersion = "1.37.2"

// Options are the API server's own flags.
type Options struct {
	SecureServing  *genericoptions.SecureServingOptionsWithLoopback
	TokenAuthFile  string
	PlatformGroups []string
	EventWindow    time.Duration

	// Authentication beyond static tokens: client certificates, the front
	// proxy's request headers (when aggregated), and the host cluster's
	// TokenReview.
	ClientCert               genericoptions.ClientCertAuthenticationOptions
	RequestHeader            genericoptions.RequestHeaderAuthenticationOptions
	AuthenticationKubeconfig string
	AuthenticationCacheTTL   time.Duration
	AuthenticationTimeout    time.Duration
	// Authorization by the host cluster's SubjectAccessReview.
	AuthorizationKubeconfig string
	AuthorizationCacheTTL   time.Duration
}

// NewOptions returns the documented defaults.
func NewOptions() *Options {
	o := &Options{
		SecureServing:  genericoptions.NewSecureServingOptions().WithLoopback(),
		PlatformGroups: []string{"system:masters"},
		EventWindow:    24 * time.Hour,

		AuthenticationCacheTTL: 10 * time.Second,
		AuthenticationTimeout:  10 * time.Second,
		AuthorizationCacheTTL:  10 * time.Second,
	}
	o.SecureServing.BindPort = 6443
	return o
}

// AddFlags registers the options on fs.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	o.SecureServing.AddFlags(fs)
	fs.StringVar(&o.TokenAuthFile, "token-auth-file", o.TokenAuthFile,
		"file of static bearer tokens in kube-apiserver's CSV format, token,user,uid,\"group1,group2\", with an optional "+
			"fifth column of user extras: \"iam.miloapis.com/parent-type=Project,iam.miloapis.com/parent-name=alpha\"")
	o.ClientCert.AddFlags(fs)
	o.RequestHeader.AddFlags(fs)
	fs.StringVar(&o.AuthenticationKubeconfig, "authentication-kubeconfig", o.AuthenticationKubeconfig,
		"kubeconfig of the host cluster whose TokenReview authenticates bearer tokens eventpipe does not know itself (aggregated mode)")
	fs.DurationVar(&o.AuthenticationCacheTTL, "authentication-token-webhook-cache-ttl", o.AuthenticationCacheTTL,
		"how long TokenReview answers are cached")
	fs.StringVar(&o.AuthorizationKubeconfig, "authorization-kubeconfig", o.AuthorizationKubeconfig,
		"kubeconfig of the host cluster whose SubjectAccessReview authorizes callers outside the platform groups (aggregated mode); "+
			"without it, any caller with a complete tenant scope may use every resource within that scope")
	fs.DurationVar(&o.AuthorizationCacheTTL, "authorization-webhook-cache-ttl", o.AuthorizationCacheTTL,
		"how long SubjectAccessReview answers are cached")
	fs.StringSliceVar(&o.PlatformGroups, "platform-groups", o.PlatformGroups, "groups whose members may do everything (platform scope)")
	fs.DurationVar(&o.EventWindow, "events.window", o.EventWindow,
		"how far back (by last observation) list and watch on the Events API look; older events are for EventQuery")
}

// Validate returns every problem with o.
func (o *Options) Validate() []error {
	errs := o.SecureServing.Validate()
	errs = append(errs, o.RequestHeader.Validate()...)
	for flag, f := range map[string]string{
		"--token-auth-file": o.TokenAuthFile, "--client-ca-file": o.ClientCert.ClientCA,
		"--requestheader-client-ca-file": o.RequestHeader.ClientCAFile,
		"--authentication-kubeconfig":    o.AuthenticationKubeconfig, "--authorization-kubeconfig": o.AuthorizationKubeconfig,
	} {
		if f == "" {
			continue
		}
		if _, err := os.Stat(f); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", flag, err))
		}
	}
	if o.EventWindow < time.Minute {
		errs = append(errs, fmt.Errorf("--events.window must be at least 1m, got %s", o.EventWindow))
	}
	if len(o.PlatformGroups) == 0 {
		errs = append(errs, errors.New("--platform-groups must name at least one group"))
	}
	return errs
}

// Backends are the parts of the data flow the server reads and writes.
type Backends struct {
	Log       event.Log
	Index     event.Index
	Watermark event.Watermark
	// Activity serves activity.miloapis.com's timeline resources; nil
	// leaves them out (see activities.go).
	Activity *ActivityBackends
	// Tiers, when set, enforces each tenant's tier (rate limits, storage
	// quota, query window).
	Tiers *Tiers
}

// Config is everything the server needs.
type Config struct {
	Generic  *genericapiserver.RecommendedConfig
	Backends Backends
	Events   event.Options
	// Tenants resolves each request's caller to its scope.
	Tenants *tenancy.Resolver
}

// Config builds a Config from the options. It generates a self-signed
// serving certificate when none is configured.
func (o *Options) Config(b Backends) (*Config, error) {
	if err := o.SecureServing.MaybeDefaultWithSelfSignedCerts("localhost", nil, []net.IP{netutils.ParseIPSloppy("127.0.0.1")}); err != nil {
		return nil, fmt.Errorf("create self-signed serving certificate: %w", err)
	}
	gc := genericapiserver.NewRecommendedConfig(Codecs)
	gc.EffectiveVersion = newEffectiveVersion()
	// kube-apiserver's documents: titled Kubernetes, versioned by the
	// server (major.minor of EffectiveVersion), bearer tokens as the
	// security scheme, so every operation also lists 401 Unauthorized.
	openapi.Configure(&gc.Config, Scheme, "Kubernetes", "")
	gc.OpenAPIConfig.SecurityDefinitions = &spec.SecurityDefinitions{"BearerToken": bearerTokenScheme()}
	gc.OpenAPIV3Config.SecuritySchemes = spec3.SecuritySchemes{"BearerToken": &spec3.SecurityScheme{
		SecuritySchemeProps: spec3.SecuritySchemeProps{Type: "apiKey", Name: "authorization", In: "header", Description: bearerTokenDescription},
	}}
	if err := o.SecureServing.ApplyTo(&gc.SecureServing, &gc.LoopbackClientConfig); err != nil {
		return nil, fmt.Errorf("configure serving: %w", err)
	}
	if err := o.applyAuthentication(gc); err != nil {
		return nil, err
	}
	tenants := tenancy.NewResolver(o.PlatformGroups)
	if err := o.applyAuthorization(gc, tenants); err != nil {
		return nil, err
	}
	genericapiserver.AuthorizeClientBearerToken(gc.LoopbackClientConfig, &gc.Authentication, &gc.Authorization)
	eo := event.DefaultOptions()
	eo.Window = o.EventWindow
	if b.Tiers != nil {
		b.Tiers.tenants = tenants
		eo.Admission = b.Tiers
	}
	return &Config{Generic: gc, Backends: b, Events: eo, Tenants: tenants}, nil
}

const bearerTokenDescription = "Bearer Token authentication"

// bearerTokenScheme is the OpenAPI v2 security definition kube-apiserver
// publishes for bearer tokens.
func bearerTokenScheme() *spec.SecurityScheme {
	return &spec.SecurityScheme{SecuritySchemeProps: spec.SecuritySchemeProps{
		Type: "apiKey", Name: "authorization", In: "header", Description: bearerTokenDescription,
	}}
}

// CompletedConfig is a Config with defaults filled in.
type CompletedConfig struct {
	generic  genericapiserver.CompletedConfig
	backends Backends
	events   event.Options
	// scopes limits every registry's reads and writes to the caller's scope.
	scopes tenancy.Scopes
}

// Complete fills in defaults.
func (c *Config) Complete() CompletedConfig {
	tenants := c.Tenants
	if tenants == nil {
		tenants = tenancy.NewResolver([]string{"system:masters"})
	}
	return CompletedConfig{generic: c.Generic.Complete(), backends: c.Backends, events: c.Events, scopes: tenancy.Scopes{Resolver: tenants}}
}

// Server is the running API server.
type Server struct {
	generic *genericapiserver.GenericAPIServer
}

// New builds the server and installs its API groups.
func (c CompletedConfig) New() (*Server, error) {
	gs, err := c.generic.New("eventpipe-apiserver", genericapiserver.NewEmptyDelegate())
	if err != nil {
		return nil, fmt.Errorf("create API server: %w", err)
	}
	b := c.backends
	table := event.NewTableConvertor()

	core := genericapiserver.NewDefaultAPIGroupInfo(corev1.GroupName, Scheme, ParameterCodec, Codecs)
	core.VersionedResourcesStorageMap["v1"] = map[string]rest.Storage{
		"events": event.NewREST(event.CoreV1, b.Log, b.Index, b.Watermark, c.scopes, table, c.events),
	}
	for res, r := range referencedCoreTypes() {
		core.VersionedResourcesStorageMap["v1"][res] = r
	}
	if err := gs.InstallLegacyAPIGroup(genericapiserver.DefaultLegacyAPIPrefix, &core); err != nil {
		return nil, fmt.Errorf("install core/v1: %w", err)
	}
	events := genericapiserver.NewDefaultAPIGroupInfo(eventsv1.GroupName, Scheme, ParameterCodec, Codecs)
	events.VersionedResourcesStorageMap["v1"] = map[string]rest.Storage{
		"events": event.NewREST(event.EventsV1, b.Log, b.Index, b.Watermark, c.scopes, table, c.events),
	}
	if err := gs.InstallAPIGroup(&events); err != nil {
		return nil, fmt.Errorf("install events.k8s.io/v1: %w", err)
	}
	if err := c.installActivityGroup(gs); err != nil {
		return nil, err
	}
	if err := c.installIngest(gs); err != nil {
		return nil, err
	}
	return &Server{generic: gs}, nil
}

// Run serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	return s.generic.PrepareRun().RunWithContext(ctx)
}
