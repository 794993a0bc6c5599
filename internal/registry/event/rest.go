package event

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/apiserver/pkg/storage"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/kubeevents/core"
	"github.com/eventpipe/eventpipe/internal/registry/resource"
	"github.com/eventpipe/eventpipe/internal/registry/tailwatch"
	"github.com/eventpipe/eventpipe/internal/scope"
)

// Options configure a REST storage.
type Options struct {
	// Window is how far back list and watch-list look by last observation;
	// older events are EventQuery's. Get is not windowed.
	Window time.Duration
	// Admission, when set, may refuse creates and updates (tiers).
	Admission Admission
}

// DefaultOptions returns the documented defaults.
func DefaultOptions() Options { return Options{Window: 24 * time.Hour} }

// REST serves Events of one API group.
type REST struct {
	resource.Type
	v        view
	gr       schema.GroupResource
	strategy strategy
	log      Log
	index    Index
	wm       Watermark
	scopes   Scopes
	table    rest.TableConvertor
	opts     Options
	now      func() time.Time
}

// Events have every verb of the generic registry's storage.
var (
	_ rest.KindProvider           = (*REST)(nil)
	_ rest.ShortNamesProvider     = (*REST)(nil)
	_ rest.StandardStorage        = (*REST)(nil)
	_ rest.StorageVersionProvider = (*REST)(nil)
)

// NewREST returns the storage of v's Events.
func NewREST(v view, log Log, index Index, wm Watermark, scopes Scopes, table rest.TableConvertor, opts Options) *REST {
	return &REST{
		// New gives the internal Event, which requests of either group
		// are decoded into (as kube-apiserver's storage does).
		Type: resource.New(func() runtime.Object { return &core.Event{} }, "event", true),

		v: v, gr: schema.GroupResource{Group: v.gv.Group, Resource: "events"}, strategy: newStrategy(v.gv),
		log: boundedLog{log}, index: index, wm: wm, scopes: scopes, table: table, opts: opts, now: time.Now,
	}
}

// NewList returns the internal EventList, as New the internal Event.
func (r *REST) NewList() runtime.Object { return &core.EventList{} }

func (r *REST) Kind() string         { return "Event" }
func (r *REST) ShortNames() []string { return []string{"ev"} }

// StorageVersion implements rest.StorageVersionProvider: Events of both
// groups are stored as core/v1 Events, as in kube-apiserver, so discovery
// gives both the same storageVersionHash.
func (r *REST) StorageVersion() runtime.GroupVersioner { return corev1.SchemeGroupVersion }

// ConvertToTable implements rest.TableConvertor.
func (r *REST) ConvertToTable(ctx context.Context, obj runtime.Object, opts runtime.Object) (*metav1.Table, error) {
	return r.table.ConvertToTable(ctx, obj, opts)
}

// unavailable is the answer when JetStream or ClickHouse fails: 503 with
// Retry-After, so clients back off and retry rather than give up.
func unavailable(err error) error {
	se := apierrors.NewServiceUnavailable(fmt.Sprintf("event storage is unavailable, retry shortly: %v", err))
	se.ErrStatus.Details = &metav1.StatusDetails{RetryAfterSeconds: 1}
	return se
}

func (r *REST) notFound(name string) error { return apierrors.NewNotFound(r.gr, name) }

// subjectFor returns the subject of the event name in ns for readers limited
// to sc, or, for readers of every scope, a pattern matching it in any scope.
func subjectFor(sc *scope.Scope, ns, name string) string {
	if sc != nil {
		return eventlog.Subject(eventlog.Key{Scope: *sc, Namespace: ns, Name: name})
	}
	return eventlog.SubjectPrefix + ".*.*." + eventlog.EncodeToken(ns) + "." + eventlog.EncodeToken(name)
}

// current returns the latest live state of an event and the sequence an
// update must expect on its subject (0 when the log no longer holds any
// state of it), or nil when it does not exist.
func (r *REST) current(ctx context.Context, sc *scope.Scope, ns, name string) (rec *eventlog.Record, expect uint64, err error) {
	rec, err = r.log.Latest(ctx, subjectFor(sc, ns, name))
	if err != nil {
		return nil, 0, unavailable(err)
	}
	if rec != nil {
		if rec.Op.Gone() {
			return nil, rec.Seq, nil
		}
		return rec, rec.Seq, nil
	}
	// Trimmed from the log after commit: ClickHouse has it, if anyone does.
	rec, err = r.index.Get(ctx, sc, ns, name)
	if err != nil {
		return nil, 0, unavailable(err)
	}
	return rec, 0, nil
}

// waitForGetRV honours a get's resourceVersion as kube-apiserver does: it
// must be a number, and the answer must be at least that recent. A get
// answers from the log's newest state, which is as recent as any
// resourceVersion the log has handed out; a larger one is waited for,
// briefly.
func (r *REST) waitForGetRV(ctx context.Context, opts *metav1.GetOptions) error {
	if opts == nil {
		return nil
	}
	rv, err := tailwatch.ParseResourceVersion(opts.ResourceVersion)
	if err != nil || rv == 0 {
		return err
	}
	_, last, err := r.log.Bounds(ctx)
	if err != nil {
		return unavailable(err)
	}
	if rv <= last {
		return nil
	}
	return r.waitForRV(ctx, rv)
}

// Get implements rest.Getter.
func (r *REST) Get(ctx context.Context, name string, opts *metav1.GetOptions) (runtime.Object, error) {
	sc, err := r.scopes.ReadScope(ctx)
	if err != nil {
		return nil, err
	}
	if err := r.waitForGetRV(ctx, opts); err != nil {
		return nil, err
	}
	rec, _, err := r.current(ctx, sc, genericapirequest.NamespaceValue(ctx), name)
	if err != nil {
		return nil, err
	}
	if rec == nil {
		return nil, r.notFound(name)
	}
	return r.v.fromCore(rec.Event), nil
}

// Create implements rest.Creater.
func (r *REST) Create(ctx context.Context, obj runtime.Object, createValidation rest.ValidateObjectFunc, options *metav1.CreateOptions) (runtime.Object, error) {
	ev, err := r.v.toCore(obj)
	if err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	if err := checkNamespaceExists(genericapirequest.NamespaceValue(ctx)); err != nil {
		return nil, err
	}
	rest.FillObjectMetaSystemFields(ev)
	if ev.GenerateName != "" && ev.Name == "" {
		ev.Name = r.strategy.GenerateName(ev.GenerateName)
	}
	if err := rest.BeforeCreate(r.strategy, ctx, ev); err != nil {
		return nil, err
	}
	if createValidation != nil {
		if err := createValidation(ctx, r.v.fromCore(ev)); err != nil {
			return nil, err
		}
	}
	if ev.ResourceVersion != "" && !isDryRun(options.DryRun) {
		// kube-apiserver's storage refuses this after validation, with
		// its text but as a 500 (an unclassified storage error). It is
		// the client's mistake, so eventpipe says so with a 400.
		return nil, apierrors.NewBadRequest(storage.ErrResourceVersionSetOnCreate.Error())
	}
	sc, err := r.writeScope(ctx, ev)
	if err != nil {
		return nil, err
	}
	// An existing live event (in the log) makes this a conflict, as in etcd.
	// An event the log has trimmed is past the hour Kubernetes keeps events
	// in etcd, so, as after etcd's TTL, its name may be used again.
	//
	// Almost every create is of a new name: publish expecting no state on
	// the subject, and look at the subject only when JetStream says it has
	// one (a live event: conflict; a deleted one: create over it). That
	// saves a round trip to JetStream on the common path.
	var seq uint64
	if isDryRun(options.DryRun) {
		if _, err := r.createExpectation(ctx, sc, ev); err != nil {
			return nil, err
		}
		return r.v.fromCore(ev), nil
	}
	seq, err = r.publish(ctx, sc, eventlog.OpCreate, ev, nil, 0)
	if errors.Is(err, eventlog.ErrConflict) {
		var expect uint64
		if expect, err = r.createExpectation(ctx, sc, ev); err != nil {
			return nil, err
		}
		seq, err = r.publish(ctx, sc, eventlog.OpCreate, ev, nil, expect)
		if errors.Is(err, eventlog.ErrConflict) {
			return nil, apierrors.NewAlreadyExists(r.gr, ev.Name)
		}
	}
	if err != nil {
		return nil, err
	}
	ev.ResourceVersion = strconv.FormatUint(seq, 10)
	return r.v.fromCore(ev), nil
}

// createExpectation returns the sequence a create of ev must find as the
// newest on its subject: 0 when the log has no state of it, the delete's
// sequence when its newest state is a delete. A live event is AlreadyExists.
func (r *REST) createExpectation(ctx context.Context, sc scope.Scope, ev *corev1.Event) (uint64, error) {
	prev, err := r.log.Latest(ctx, eventlog.Subject(eventlog.Key{Scope: sc, Namespace: ev.Namespace, Name: ev.Name}))
	if err != nil {
		return 0, unavailable(err)
	}
	if prev == nil {
		return 0, nil
	}
	if !prev.Op.Gone() {
		return 0, apierrors.NewAlreadyExists(r.gr, ev.Name)
	}
	return prev.Seq, nil
}

// checkNamespaceExists answers a write into a namespace that cannot exist
// as kube-apiserver's NamespaceLifecycle admission answers a write into a
// missing namespace (before any validation of the object). To eventpipe
// every valid namespace name is a namespace (see internal/registry/namespace),
// so only names no namespace can have (not a DNS label) are missing.
func checkNamespaceExists(ns string) error {
	if ns == "" || len(apimachineryvalidation.ValidateNamespaceName(ns, false)) == 0 {
		return nil
	}
	return apierrors.NewNotFound(schema.GroupResource{Resource: "namespaces"}, ns)
}

func (r *REST) writeScope(ctx context.Context, ev *corev1.Event) (scope.Scope, error) {
	sc, err := r.scopes.WriteScope(ctx, ev)
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return scope.Scope{}, err // the caller may not write at all (403)
	}
	if err != nil {
		return scope.Scope{}, apierrors.NewInvalid(coreEventKind.GroupKind(), ev.Name, field.ErrorList{
			field.Invalid(field.NewPath("metadata", "annotations").Key(scope.AnnotationType), ev.Annotations[scope.AnnotationType], err.Error()),
		})
	}
	return sc, nil
}

// publish stores one state, expecting the subject's newest sequence to be
// expect (0: no state in the log); prev is the state an update replaces,
// when watches need it (see eventlog.Record.Prev). The stored object never
// carries a resourceVersion: its sequence is its resourceVersion.
func (r *REST) publish(ctx context.Context, sc scope.Scope, op eventlog.Op, ev, prev *corev1.Event, expect uint64) (uint64, error) {
	rec := &eventlog.Record{Key: eventlog.Key{Scope: sc, Namespace: ev.Namespace, Name: ev.Name}, Op: op, Event: ev, Prev: prev}
	if r.opts.Admission != nil && op != eventlog.OpDelete {
		// Deletes are never refused: they are how a tenant cleans up.
		done, err := r.opts.Admission.Admit(ctx, sc, rec)
		if err != nil {
			return 0, err
		}
		seq, err := r.log.Publish(ctx, rec, eventlog.PublishOptions{ExpectLastSeq: &expect})
		done(seq, err)
		return r.published(seq, err)
	}
	seq, err := r.log.Publish(ctx, rec, eventlog.PublishOptions{ExpectLastSeq: &expect})
	return r.published(seq, err)
}

// published maps a publish's outcome to the registry's errors.
func (r *REST) published(seq uint64, err error) (uint64, error) {
	if errors.Is(err, eventlog.ErrConflict) {
		return 0, err
	}
	if err != nil {
		return 0, unavailable(err)
	}
	return seq, nil
}

// Update implements rest.Updater; patches arrive here too. Like the generic
// registry's GuaranteedUpdate, it re-reads and re-applies the change when a
// concurrent write got in first, unless the client named a resourceVersion.
func (r *REST) Update(ctx context.Context, name string, objInfo rest.UpdatedObjectInfo, createValidation rest.ValidateObjectFunc,
	updateValidation rest.ValidateObjectUpdateFunc, forceAllowCreate bool, options *metav1.UpdateOptions) (runtime.Object, bool, error) {
	return r.guaranteed(ctx, name, func(cur *eventlog.Record, expect uint64) (runtime.Object, bool, error) {
		if cur == nil {
			return r.createOnUpdate(ctx, name, objInfo, createValidation, options, expect)
		}
		old := r.v.fromCore(cur.Event)
		if err := checkPreconditions(r.gr, name, objInfo.Preconditions(), cur.Event); err != nil {
			return nil, false, err
		}
		newObj, err := objInfo.UpdatedObject(ctx, old)
		if err != nil {
			return nil, false, err
		}
		ev, err := r.v.toCore(newObj)
		if err != nil {
			return nil, false, apierrors.NewBadRequest(err.Error())
		}
		if ev.ResourceVersion != "" && ev.ResourceVersion != cur.Event.ResourceVersion {
			return nil, false, apierrors.NewConflict(r.gr, name, errors.New(optimisticLockMsg))
		}
		// Events allow unconditional updates: an update without a
		// resourceVersion applies to the current state.
		ev.ResourceVersion = cur.Event.ResourceVersion
		if err := rest.BeforeUpdate(r.strategy, ctx, ev, cur.Event); err != nil {
			return nil, false, err
		}
		if updateValidation != nil {
			if err := updateValidation(ctx, r.v.fromCore(ev), old); err != nil {
				return nil, false, err
			}
		}
		if isDryRun(options.DryRun) {
			ev.ResourceVersion = cur.Event.ResourceVersion
			return r.v.fromCore(ev), false, nil
		}
		// The state keeps the scope it has: nobody moves an event between
		// tenants by editing its annotations, and they keep saying so.
		restamp(ev, cur.Key.Scope)
		var prev *corev1.Event
		if selectionMayChange(cur.Event, ev) {
			prev = cur.Event
		}
		seq, err := r.publish(ctx, cur.Key.Scope, eventlog.OpUpdate, ev, prev, expect)
		if err != nil {
			// On a conflict a client that named a resourceVersion gets
			// its answer from the check above on the next round.
			return nil, false, err
		}
		ev.ResourceVersion = strconv.FormatUint(seq, 10)
		return r.v.fromCore(ev), false, nil
	})
}

// guaranteed runs write on the current state of the event name (nil when
// there is none) and the sequence a publish must expect, as the generic
// registry's GuaranteedUpdate does: when write's publish loses to a
// concurrent write (eventlog.ErrConflict), it re-reads and runs write again
// for as long as the request lasts, then answers with the generic
// registry's Conflict. write must return eventlog.ErrConflict only from a
// publish it may repeat.
func (r *REST) guaranteed(ctx context.Context, name string, write func(cur *eventlog.Record, expect uint64) (runtime.Object, bool, error)) (runtime.Object, bool, error) {
	sc, err := r.scopes.ReadScope(ctx)
	if err != nil {
		return nil, false, err
	}
	ns := genericapirequest.NamespaceValue(ctx)
	for {
		cur, expect, err := r.current(ctx, sc, ns, name)
		if err != nil {
			return nil, false, err
		}
		obj, created, err := write(cur, expect)
		if !errors.Is(err, eventlog.ErrConflict) {
			return obj, created, err
		}
		if ctx.Err() != nil {
			return nil, false, apierrors.NewConflict(r.gr, name, errors.New(optimisticLockMsg))
		}
	}
}

// optimisticLockMsg is the generic registry's text for a lost update.
const optimisticLockMsg = "the object has been modified; please apply your changes to the latest version and try again"

func (r *REST) createOnUpdate(ctx context.Context, name string, objInfo rest.UpdatedObjectInfo, createValidation rest.ValidateObjectFunc,
	options *metav1.UpdateOptions, expect uint64) (runtime.Object, bool, error) {
	// Like the generic registry, give the update an empty object as the
	// current one (not nil): the field manager then records the creating
	// manager's fields, and an apply patch sees an object to create.
	obj, err := objInfo.UpdatedObject(ctx, &core.Event{})
	if err != nil {
		return nil, false, err
	}
	ev, err := r.v.toCore(obj)
	if err != nil {
		return nil, false, apierrors.NewBadRequest(err.Error())
	}
	if ev.Name != name {
		ev.Name = name
	}
	// As in the generic registry, a resourceVersion on an update that turns
	// into a create is no precondition: the object is created, and its
	// storage gives it a resourceVersion of its own.
	ev.ResourceVersion = ""
	created, err := r.Create(ctx, r.v.fromCore(ev), createValidation, &metav1.CreateOptions{DryRun: options.DryRun, FieldManager: options.FieldManager})
	if err != nil {
		return nil, false, err
	}
	return created, true, nil
}

// checkPreconditions checks an update's preconditions as kube-apiserver's
// storage does, and answers as it does: a Conflict quoting the storage error,
// which names the object's etcd key (for Events of either group
// /registry/events/NAMESPACE/NAME).
func checkPreconditions(gr schema.GroupResource, name string, p *metav1.Preconditions, ev *corev1.Event) error {
	if p == nil {
		return nil
	}
	key := "/registry/events/" + ev.Namespace + "/" + name
	if err := (&storage.Preconditions{UID: p.UID, ResourceVersion: p.ResourceVersion}).Check(key, ev); err != nil {
		return apierrors.NewConflict(gr, name, err)
	}
	return nil
}

// Delete implements rest.GracefulDeleter. Events have no finalizers, so a
// delete is immediate; like the generic registry for events it answers with
// a Status, not the object.
func (r *REST) Delete(ctx context.Context, name string, deleteValidation rest.ValidateObjectFunc, options *metav1.DeleteOptions) (runtime.Object, bool, error) {
	return r.guaranteed(ctx, name, func(cur *eventlog.Record, expect uint64) (runtime.Object, bool, error) {
		if cur == nil {
			return nil, false, r.notFound(name)
		}
		if options == nil {
			options = &metav1.DeleteOptions{}
		}
		// The generic registry's delete checks: the options' validity and
		// the preconditions, with its texts. Events are never deleted
		// gracefully, so the rest of it does not apply.
		if _, _, err := rest.BeforeDelete(r.strategy, ctx, cur.Event, options); err != nil {
			return nil, false, err
		}
		if deleteValidation != nil {
			if err := deleteValidation(ctx, r.v.fromCore(cur.Event)); err != nil {
				return nil, false, err
			}
		}
		if !isDryRun(options.DryRun) {
			// On a conflict the preconditions are checked again, on the
			// new state.
			if _, err := r.publish(ctx, cur.Key.Scope, eventlog.OpDelete, cur.Event, nil, expect); err != nil {
				return nil, false, err
			}
		}
		return &metav1.Status{Status: metav1.StatusSuccess, Details: &metav1.StatusDetails{
			Name: name, Group: r.gr.Group, Kind: r.gr.Resource, UID: cur.Event.UID}}, true, nil
	})
}

// deleteCollectionPageSize is the page size of a delete-collection without
// a limit, the generic registry's.
const deleteCollectionPageSize = 10000

// DeleteCollection implements rest.CollectionDeleter as the generic
// registry does: it deletes what a list with the same options returns, one
// by one. With a limit it deletes that one page and answers with it,
// continue token included; without, it goes through every page and answers
// with the first page's list metadata and every item listed (deleted
// meanwhile or not).
func (r *REST) DeleteCollection(ctx context.Context, deleteValidation rest.ValidateObjectFunc, options *metav1.DeleteOptions,
	listOptions *metainternalversion.ListOptions) (runtime.Object, error) {
	lo := &metainternalversion.ListOptions{}
	if listOptions != nil {
		lo = listOptions.DeepCopy()
	}
	hasLimit := lo.Limit > 0
	if !hasLimit {
		lo.Limit = deleteCollectionPageSize
	}
	var first runtime.Object
	var all []runtime.Object
	for {
		listObj, err := r.List(ctx, lo)
		if err != nil {
			return nil, err
		}
		items, err := meta.ExtractList(listObj)
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			m, err := meta.Accessor(it)
			if err != nil {
				return nil, err
			}
			_, _, err = r.Delete(genericapirequest.WithNamespace(ctx, m.GetNamespace()), m.GetName(), deleteValidation, options.DeepCopy())
			if err != nil && !apierrors.IsNotFound(err) {
				return nil, err
			}
		}
		if hasLimit {
			return listObj, nil
		}
		all = append(all, items...)
		if first == nil {
			first = listObj
		}
		lm, err := meta.ListAccessor(listObj)
		if err != nil {
			return nil, err
		}
		if lm.GetContinue() == "" {
			if err := meta.SetList(first, all); err != nil {
				return nil, err
			}
			return first, nil
		}
		lo.Continue, lo.ResourceVersion, lo.ResourceVersionMatch = lm.GetContinue(), "", ""
	}
}

func isDryRun(dryRun []string) bool { return len(dryRun) > 0 }
