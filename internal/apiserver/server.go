package apiserver

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apiserver/pkg/registry/rest"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/healthz"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	"k8s.io/kube-openapi/pkg/spec3"
	"k8s.io/kube-openapi/pkg/validation/spec"
	netutils "k8s.io/utils/net"

	"github.com/eventpipe/eventpipe/internal/apiserver/openapi"
	registryactivity "github.com/eventpipe/eventpipe/internal/registry/activity"
	"github.com/eventpipe/eventpipe/internal/registry/activitypolicy"
	"github.com/eventpipe/eventpipe/internal/registry/auditlogquery"
	"github.com/eventpipe/eventpipe/internal/registry/event"
	"github.com/eventpipe/eventpipe/internal/registry/eventfacetquery"
	"github.com/eventpipe/eventpipe/internal/registry/eventquery"
	"github.com/eventpipe/eventpipe/internal/registry/policypreview"
	"github.com/eventpipe/eventpipe/internal/registry/tenantusage"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
	"github.com/eventpipe/eventpipe/internal/tenancy"
	"github.com/eventpipe/eventpipe/internal/tiers/admission"
	"github.com/eventpipe/eventpipe/internal/ui"
	"github.com/eventpipe/eventpipe/internal/webhook"
	activityv1alpha1 "github.com/eventpipe/eventpipe/pkg/apis/activity/v1alpha1"
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
	// AuthenticationSkipLookup keeps the front proxy's settings from being
	// read from the host cluster when no request-header flags are given.
	AuthenticationSkipLookup bool
	AuthenticationCacheTTL   time.Duration
	AuthenticationTimeout    time.Duration
	// Authorization by the host cluster's SubjectAccessReview.
	AuthorizationKubeconfig string
	AuthorizationCacheTTL   time.Duration

	// UI serves the web UI's static files under /ui/ (see internal/ui).
	UI bool

	// CursorKey is the standard base64 of the key that signs EventQuery
	// continue tokens; Complete takes it from CursorKeyEnv. Empty: a random
	// key per process.
	CursorKey string
}

// CursorKeyEnv holds the key (standard base64, at least 32 bytes decoded)
// that signs EventQuery continue tokens. It is an environment variable,
// like the ClickHouse password, because it is a secret. Unset: a random
// key per process, which is fine for one replica; replicas behind one
// Service must share a key, or a token issued by one fails on another.
const CursorKeyEnv = "EVENTPIPE_EVENTQUERY_CURSOR_KEY"

// NewOptions returns the documented defaults.
func NewOptions() *Options {
	o := &Options{
		SecureServing:  genericoptions.NewSecureServingOptions().WithLoopback(),
		PlatformGroups: []string{"system:masters"},
		EventWindow:    24 * time.Hour,
		UI:             true,

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
	fs.BoolVar(&o.AuthenticationSkipLookup, "authentication-skip-lookup", o.AuthenticationSkipLookup,
		"do not read the front proxy's CA and request headers from the host cluster's ConfigMap "+
			"kube-system/extension-apiserver-authentication when --authentication-kubeconfig is set and --requestheader-client-ca-file is not")
	fs.DurationVar(&o.AuthenticationCacheTTL, "authentication-token-webhook-cache-ttl", o.AuthenticationCacheTTL,
		"how long TokenReview answers are cached")
	fs.StringVar(&o.AuthorizationKubeconfig, "authorization-kubeconfig", o.AuthorizationKubeconfig,
		"kubeconfig of the host cluster whose SubjectAccessReview authorizes callers outside the platform groups (aggregated mode); "+
			"without it, any caller with a complete tenant scope may use every resource within that scope")
	fs.DurationVar(&o.AuthorizationCacheTTL, "authorization-webhook-cache-ttl", o.AuthorizationCacheTTL,
		"how long SubjectAccessReview answers are cached")
	fs.StringSliceVar(&o.PlatformGroups, "platform-groups", o.PlatformGroups, "groups whose members may do everything (platform scope)")
	fs.BoolVar(&o.UI, "ui", o.UI,
		"serve the web UI at /ui/: static files only, loaded without credentials; every call it makes goes to the API with the user's own token")
	fs.DurationVar(&o.EventWindow, "events.window", o.EventWindow,
		"how far back (by last observation) list and watch on the Events API look; older events are for EventQuery")
}

// Complete fills in what the options take from the environment rather
// than from flags: the cursor key, unless one is set already. Call it
// before Validate.
func (o *Options) Complete() {
	if o.CursorKey == "" {
		o.CursorKey = os.Getenv(CursorKeyEnv)
	}
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
	if _, err := o.cursorKey(); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// cursorKey decodes CursorKey; nil when none is set.
func (o *Options) cursorKey() ([]byte, error) {
	if o.CursorKey == "" {
		return nil, nil
	}
	key, err := base64.StdEncoding.DecodeString(o.CursorKey)
	if err != nil || len(key) < 32 {
		return nil, fmt.Errorf("%s must be standard base64 of at least 32 bytes (e.g. from `head -c 32 /dev/urandom | base64`)", CursorKeyEnv)
	}
	return key, nil
}

// Tenants returns the resolver of callers to their scopes that the options
// describe. The server builds its own from the same options; the tier
// admission policy, built outside, uses one to tell platform callers apart.
func (o *Options) Tenants() *tenancy.Resolver { return tenancy.NewResolver(o.PlatformGroups) }

// Backends are the parts of the data flow the server reads and writes.
// Log, Index, History and Watermark are required; Activity and Tiers are optional,
// and New says what each adds.
type Backends struct {
	// Log is the EVENTS stream: the Events API reads, watches and writes
	// it, and the webhook receiver publishes batches into it.
	Log EventLog
	// Index is the store of committed states as the Events API's lists
	// and gets read it (event.ClickHouseIndex over the ClickHouse store).
	Index event.Index
	// History answers history queries (EventQuery, EventFacetQuery) over
	// the same committed states; the ClickHouse store provides it.
	History HistoryIndex
	// Watermark is the writer's committed watermark.
	Watermark event.Watermark
	// Activity serves activity.miloapis.com's timeline resources; nil
	// leaves them out.
	Activity *ActivityBackends
	// Tiers, when set, enforces each tenant's tier (rate limits, storage
	// quota, query window) and serves tenantusages.
	Tiers *admission.Policy
	// AuditLog, when set, is the AUDIT stream the audit receiver
	// (POST /ingest/v1/audit) publishes kube-apiserver's audit batches into.
	AuditLog webhook.AuditLog
	// Audit, when set, serves auditlogqueries over the stored audit log.
	Audit *AuditBackends
	// LogReady, when set, reports whether the log can be reached now; it is
	// the readyz check "jetstream", so that a replica cut off from NATS
	// leaves its Service's endpoints (as kube-apiserver's etcd check does)
	// and clients go to a replica that can answer. It must not block.
	LogReady func() error
}

// AuditBackends are what AuditLogQuery reads: the audit records' index
// (the ClickHouse store) and the audit indexer's committed watermark on
// the AUDIT stream. Both are required when Audit is set.
type AuditBackends struct {
	Index     auditlogquery.Index
	Watermark auditlogquery.Watermark
}

// EventLog is what the server needs from the EVENTS stream.
type EventLog interface {
	event.Log
	webhook.Log
}

// HistoryIndex is what the query kinds need from the store of committed
// states.
type HistoryIndex interface {
	eventquery.Index
	eventfacetquery.Index
}

var (
	_ HistoryIndex           = (*chstore.Store)(nil)
	_ auditlogquery.Index    = (*chstore.Store)(nil)
	_ event.Admission        = (*admission.Policy)(nil)
	_ webhook.Admission      = (*admission.Policy)(nil)
	_ eventquery.QueryWindow = (*admission.Policy)(nil)
)

func (b Backends) validate() error {
	var errs []error
	if b.Log == nil {
		errs = append(errs, errors.New("no event log"))
	}
	if b.Index == nil {
		errs = append(errs, errors.New("no index"))
	}
	if b.History == nil {
		errs = append(errs, errors.New("no history index"))
	}
	if b.Watermark == nil {
		errs = append(errs, errors.New("no watermark"))
	}
	if a := b.Audit; a != nil && (a.Index == nil || a.Watermark == nil) {
		errs = append(errs, errors.New("audit backends without an index or a watermark"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("API server backends: %w", err)
	}
	return nil
}

// Config is everything the server needs.
type Config struct {
	Generic  *genericapiserver.RecommendedConfig
	Backends Backends
	Events   event.Options
	// Tenants resolves each request's caller to its scope.
	Tenants *tenancy.Resolver
	// Queries tunes EventQuery and EventFacetQuery; Signer signs their
	// continue tokens.
	Queries eventquery.Options
	Signer  *eventquery.Signer
	// UI serves the web UI's files under /ui/.
	UI bool
}

// Config builds a Config from the options. It generates a self-signed
// serving certificate when none is configured.
func (o *Options) Config(b Backends) (*Config, error) {
	if err := b.validate(); err != nil {
		return nil, err
	}
	qo := eventquery.DefaultOptions()
	key, err := o.cursorKey()
	if err != nil {
		return nil, err
	}
	if key != nil {
		qo.CursorKey = key
	}
	signer, err := eventquery.NewSigner(qo.CursorKey, qo.CursorTTL)
	if err != nil {
		return nil, err
	}
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
	tenants := o.Tenants()
	if err := o.applyAuthorization(gc, tenants); err != nil {
		return nil, err
	}
	genericapiserver.AuthorizeClientBearerToken(gc.LoopbackClientConfig, &gc.Authentication, &gc.Authorization)
	eo := event.DefaultOptions()
	eo.Window = o.EventWindow
	if b.Tiers != nil {
		eo.Admission = b.Tiers
	}
	return &Config{Generic: gc, Backends: b, Events: eo, Tenants: tenants, Queries: qo, Signer: signer, UI: o.UI}, nil
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
	queries  eventquery.Options
	signer   *eventquery.Signer
	// scopes limits every registry's reads and writes to the caller's scope.
	scopes tenancy.Scopes
	ui     bool
}

// Complete fills in the generic server's defaults.
func (c *Config) Complete() CompletedConfig {
	return CompletedConfig{generic: c.Generic.Complete(), backends: c.Backends, events: c.Events,
		queries: c.Queries, signer: c.Signer, scopes: tenancy.Scopes{Resolver: c.Tenants}, ui: c.UI}
}

// Server is the running API server.
type Server struct {
	generic *genericapiserver.GenericAPIServer
}

// New builds the server: every resource it serves, by group, and the
// webhook receiver.
func (c CompletedConfig) New() (*Server, error) {
	gs, err := c.generic.New("eventpipe-apiserver", genericapiserver.NewEmptyDelegate())
	if err != nil {
		return nil, fmt.Errorf("create API server: %w", err)
	}
	b := c.backends
	table := event.NewTableConvertor()
	if b.LogReady != nil {
		ready := b.LogReady
		if err := gs.AddReadyzChecks(healthz.NamedCheck("jetstream", func(*http.Request) error { return ready() })); err != nil {
			return nil, fmt.Errorf("add readyz check: %w", err)
		}
	}

	// core/v1: Events, and the types events refer to (see referenced.go).
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

	// events.k8s.io/v1: the same records as core/v1 Events.
	events := genericapiserver.NewDefaultAPIGroupInfo(eventsv1.GroupName, Scheme, ParameterCodec, Codecs)
	events.VersionedResourcesStorageMap["v1"] = map[string]rest.Storage{
		"events": event.NewREST(event.EventsV1, b.Log, b.Index, b.Watermark, c.scopes, table, c.events),
	}
	if err := gs.InstallAPIGroup(&events); err != nil {
		return nil, fmt.Errorf("install events.k8s.io/v1: %w", err)
	}

	// activity.miloapis.com/v1alpha1: history queries always; activities
	// and their policies with the activity backends; each tenant's tier and
	// usage with tiers.
	var window eventquery.QueryWindow = eventquery.FixedQueryWindow{Window: eventquery.DefaultQueryWindow, Tier: "default"}
	if b.Tiers != nil {
		window = b.Tiers
	}
	activity := map[string]rest.Storage{
		"eventqueries": eventquery.NewREST(eventquery.Deps{
			Index: b.History, Watermark: b.Watermark, Scopes: c.scopes, Window: window, Signer: c.signer, Limits: c.queries.Limits,
		}),
		"eventfacetqueries": eventfacetquery.NewREST(eventfacetquery.Deps{
			Index: b.History, Watermark: b.Watermark, Scopes: c.scopes, Window: window, Limits: c.queries.Limits,
		}),
	}
	if a := b.Activity; a != nil {
		activity["activities"] = registryactivity.NewREST(a.Log, a.Index, a.Watermark, c.scopes, c.events.Window)
		activity["activitypolicies"] = activitypolicy.NewREST(a.Policies)
		activity["policypreviews"] = policypreview.NewREST(a.Index, c.scopes)
	}
	if a := b.Audit; a != nil {
		activity["auditlogqueries"] = auditlogquery.NewREST(auditlogquery.Deps{
			Index: a.Index, Watermark: a.Watermark, Scopes: c.scopes, Window: window, Signer: c.signer, Limits: c.queries.Limits,
		})
	}
	if t := b.Tiers; t != nil {
		activity["tenantusages"] = tenantusage.NewREST(c.scopes, t.Quota, t.Resolver)
	}
	info := genericapiserver.NewDefaultAPIGroupInfo(activityv1alpha1.GroupName, Scheme, ParameterCodec, Codecs)
	info.VersionedResourcesStorageMap[activityv1alpha1.SchemeGroupVersion.Version] = activity
	if err := gs.InstallAPIGroup(&info); err != nil {
		return nil, fmt.Errorf("install %s: %w", activityv1alpha1.SchemeGroupVersion, err)
	}

	// POST /ingest/v1/events and /ingest/v1/audit (see ingest.go).
	c.installIngest(gs)

	// GET /ui/…: the web UI's embedded files, ahead of authentication so a
	// browser can load the page before it has a token; they hold no data,
	// and every other path still goes through the whole chain.
	if c.ui {
		gs.Handler.FullHandlerChain = ui.Wrap(gs.Handler.FullHandlerChain)
	}
	return &Server{generic: gs}, nil
}

// Run serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	return s.generic.PrepareRun().RunWithContext(ctx)
}
