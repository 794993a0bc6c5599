// Package activitypolicy is the REST storage of ActivityPolicies
// (activity.miloapis.com/v1alpha1, cluster-scoped): create, get, list,
// watch, update, patch and delete, persisted in a JetStream key-value
// bucket (activity.PolicyStore) rather than etcd. Every write is validated
// by compiling the policy: CEL that does not compile or type-check and
// templates that do not balance are refused with 422 naming the rule and
// column.
package activitypolicy

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/registry/rest"

	"github.com/eventpipe/eventpipe/internal/activity"
	"github.com/eventpipe/eventpipe/internal/registry/resource"
	"github.com/eventpipe/eventpipe/internal/registry/tailwatch"
	v1alpha1 "github.com/eventpipe/eventpipe/pkg/apis/activity/v1alpha1"
)

// Store is what the storage needs from the policy bucket.
type Store interface {
	Get(ctx context.Context, name string) (*v1alpha1.ActivityPolicy, error)
	List(ctx context.Context) ([]v1alpha1.ActivityPolicy, uint64, error)
	Create(ctx context.Context, p *v1alpha1.ActivityPolicy) (*v1alpha1.ActivityPolicy, error)
	Update(ctx context.Context, p *v1alpha1.ActivityPolicy, rev uint64) (*v1alpha1.ActivityPolicy, error)
	Delete(ctx context.Context, name string, rev uint64) error
	FirstRevision(ctx context.Context) (uint64, error)
	Watch(ctx context.Context, from uint64) (<-chan activity.PolicyChange, error)
}

// REST serves ActivityPolicies.
type REST struct {
	resource.Type
	store Store
	now   func() time.Time
}

var (
	_ rest.KindProvider    = (*REST)(nil)
	_ rest.Getter          = (*REST)(nil)
	_ rest.Lister          = (*REST)(nil)
	_ rest.Watcher         = (*REST)(nil)
	_ rest.Creater         = (*REST)(nil)
	_ rest.Updater         = (*REST)(nil)
	_ rest.GracefulDeleter = (*REST)(nil)
)

// NewREST returns the storage.
func NewREST(store Store) *REST {
	return &REST{Type: resource.New(func() runtime.Object { return &v1alpha1.ActivityPolicy{} }, "activitypolicy", false), store: store, now: time.Now}
}

var gr = v1alpha1.Resource("activitypolicies")

func (r *REST) NewList() runtime.Object { return &v1alpha1.ActivityPolicyList{} }
func (r *REST) Kind() string            { return "ActivityPolicy" }

func unavailable(err error) error {
	se := apierrors.NewServiceUnavailable(fmt.Sprintf("policy storage is unavailable, retry shortly: %v", err))
	se.ErrStatus.Details = &metav1.StatusDetails{RetryAfterSeconds: 1}
	return se
}

func (r *REST) mapErr(err error, name string) error {
	switch {
	case errors.Is(err, activity.ErrPolicyNotFound):
		return apierrors.NewNotFound(gr, name)
	case errors.Is(err, activity.ErrPolicyExists):
		return apierrors.NewAlreadyExists(gr, name)
	case errors.Is(err, activity.ErrPolicyConflict):
		return apierrors.NewConflict(gr, name, errors.New("the object has been modified; please apply your changes to the latest version and try again"))
	}
	return unavailable(err)
}

// validate compiles p; the errors name field, rule and column.
func validate(p *v1alpha1.ActivityPolicy) error {
	if _, errs := activity.Compile(p); len(errs) > 0 {
		return apierrors.NewInvalid(v1alpha1.SchemeGroupVersion.WithKind("ActivityPolicy").GroupKind(), p.Name, errs)
	}
	return nil
}

// Get implements rest.Getter.
func (r *REST) Get(ctx context.Context, name string, _ *metav1.GetOptions) (runtime.Object, error) {
	p, err := r.store.Get(ctx, name)
	if err != nil {
		return nil, r.mapErr(err, name)
	}
	return p, nil
}

// Create implements rest.Creater.
func (r *REST) Create(ctx context.Context, obj runtime.Object, createValidation rest.ValidateObjectFunc, _ *metav1.CreateOptions) (runtime.Object, error) {
	p, ok := obj.(*v1alpha1.ActivityPolicy)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("not an ActivityPolicy: %T", obj))
	}
	p = p.DeepCopy()
	if p.Name == "" && p.GenerateName != "" {
		p.Name = p.GenerateName + strconv.FormatInt(time.Now().UnixNano()%1e6, 36)
	}
	if p.ResourceVersion != "" {
		return nil, apierrors.NewBadRequest("resourceVersion should not be set on objects to be created")
	}
	if err := validate(p); err != nil {
		return nil, err
	}
	if createValidation != nil {
		if err := createValidation(ctx, p); err != nil {
			return nil, err
		}
	}
	p.UID = types.UID(uuid.NewString())
	p.CreationTimestamp = metav1.NewTime(r.now().UTC().Truncate(time.Second))
	p.Generation = 1
	p.ManagedFields = nil
	out, err := r.store.Create(ctx, p)
	if err != nil {
		return nil, r.mapErr(err, p.Name)
	}
	return out, nil
}

// Update implements rest.Updater (update and patch).
func (r *REST) Update(ctx context.Context, name string, objInfo rest.UpdatedObjectInfo, createValidation rest.ValidateObjectFunc,
	updateValidation rest.ValidateObjectUpdateFunc, forceAllowCreate bool, opts *metav1.UpdateOptions) (runtime.Object, bool, error) {
	old, err := r.store.Get(ctx, name)
	if errors.Is(err, activity.ErrPolicyNotFound) && forceAllowCreate {
		obj, err := objInfo.UpdatedObject(ctx, nil)
		if err != nil {
			return nil, false, err
		}
		created, err := r.Create(ctx, obj, createValidation, &metav1.CreateOptions{})
		return created, true, err
	}
	if err != nil {
		return nil, false, r.mapErr(err, name)
	}
	obj, err := objInfo.UpdatedObject(ctx, old)
	if err != nil {
		return nil, false, err
	}
	p, ok := obj.(*v1alpha1.ActivityPolicy)
	if !ok {
		return nil, false, apierrors.NewBadRequest(fmt.Sprintf("not an ActivityPolicy: %T", obj))
	}
	p = p.DeepCopy()
	if p.Name != name {
		return nil, false, apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", p.Name, name))
	}
	if p.ResourceVersion != "" && p.ResourceVersion != old.ResourceVersion {
		return nil, false, r.mapErr(activity.ErrPolicyConflict, name)
	}
	if err := validate(p); err != nil {
		return nil, false, err
	}
	if updateValidation != nil {
		if err := updateValidation(ctx, p, old); err != nil {
			return nil, false, err
		}
	}
	p.UID, p.CreationTimestamp, p.Generation, p.ManagedFields = old.UID, old.CreationTimestamp, old.Generation, nil
	if !apiequality.Semantic.DeepEqual(p.Spec, old.Spec) {
		p.Generation++
	}
	rev, _ := strconv.ParseUint(old.ResourceVersion, 10, 64)
	out, err := r.store.Update(ctx, p, rev)
	if err != nil {
		return nil, false, r.mapErr(err, name)
	}
	return out, false, nil
}

// Delete implements rest.GracefulDeleter.
func (r *REST) Delete(ctx context.Context, name string, deleteValidation rest.ValidateObjectFunc, opts *metav1.DeleteOptions) (runtime.Object, bool, error) {
	old, err := r.store.Get(ctx, name)
	if err != nil {
		return nil, false, r.mapErr(err, name)
	}
	if opts != nil && opts.Preconditions != nil {
		if uid := opts.Preconditions.UID; uid != nil && *uid != old.UID {
			return nil, false, apierrors.NewConflict(gr, name, fmt.Errorf("precondition failed: UID in precondition: %v, UID in object meta: %v", *uid, old.UID))
		}
		if rv := opts.Preconditions.ResourceVersion; rv != nil && *rv != old.ResourceVersion {
			return nil, false, apierrors.NewConflict(gr, name, fmt.Errorf("precondition failed: ResourceVersion in precondition: %v, ResourceVersion in object meta: %v", *rv, old.ResourceVersion))
		}
	}
	if deleteValidation != nil {
		if err := deleteValidation(ctx, old); err != nil {
			return nil, false, err
		}
	}
	rev, _ := strconv.ParseUint(old.ResourceVersion, 10, 64)
	if err := r.store.Delete(ctx, name, rev); err != nil {
		return nil, false, r.mapErr(err, name)
	}
	return old, true, nil
}

func matcher(opts *metainternalversion.ListOptions) func(p *v1alpha1.ActivityPolicy) bool {
	ls, fs := labels.Everything(), fields.Everything()
	if opts != nil && opts.LabelSelector != nil {
		ls = opts.LabelSelector
	}
	if opts != nil && opts.FieldSelector != nil {
		fs = opts.FieldSelector
	}
	return func(p *v1alpha1.ActivityPolicy) bool {
		return ls.Matches(labels.Set(p.Labels)) && fs.Matches(fields.Set{"metadata.name": p.Name})
	}
}

// List implements rest.Lister.
func (r *REST) List(ctx context.Context, opts *metainternalversion.ListOptions) (runtime.Object, error) {
	ps, rv, err := r.store.List(ctx)
	if err != nil {
		return nil, unavailable(err)
	}
	match := matcher(opts)
	list := &v1alpha1.ActivityPolicyList{ListMeta: metav1.ListMeta{ResourceVersion: strconv.FormatUint(rv, 10)}, Items: []v1alpha1.ActivityPolicy{}}
	for i := range ps {
		if match(&ps[i]) {
			list.Items = append(list.Items, ps[i])
		}
	}
	return list, nil
}

// Watch implements rest.Watcher: from a resourceVersion, every later change
// in order; with none, the current policies first as ADDED.
func (r *REST) Watch(ctx context.Context, opts *metainternalversion.ListOptions) (watch.Interface, error) {
	if opts == nil {
		opts = &metainternalversion.ListOptions{}
	}
	match := matcher(opts)
	var initial []v1alpha1.ActivityPolicy
	var from uint64
	if opts.ResourceVersion == "" || opts.ResourceVersion == "0" || (opts.SendInitialEvents != nil && *opts.SendInitialEvents) {
		ps, rv, err := r.store.List(ctx)
		if err != nil {
			return nil, unavailable(err)
		}
		initial, from = ps, rv
	} else {
		rv, err := tailwatch.ParseResourceVersion(opts.ResourceVersion)
		if err != nil {
			return nil, err
		}
		first, err := r.store.FirstRevision(ctx)
		if err != nil {
			return nil, unavailable(err)
		}
		if rv+1 < first {
			return nil, apierrors.NewResourceExpired(fmt.Sprintf("too old resource version: %d (%d)", rv, first-1))
		}
		from = rv
	}
	wctx, cancel := context.WithCancel(ctx)
	changes, err := r.store.Watch(wctx, from)
	if err != nil {
		cancel()
		return nil, unavailable(err)
	}
	w := &watcher{result: make(chan watch.Event, 16), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.result)
		defer w.Stop()
		for i := range initial {
			if match(&initial[i]) && !w.send(watch.Event{Type: watch.Added, Object: &initial[i]}) {
				return
			}
		}
		known := map[string]bool{}
		for i := range initial {
			known[initial[i].Name] = true
		}
		for c := range changes {
			typ := watch.Modified
			switch {
			case c.Deleted:
				typ = watch.Deleted
				delete(known, c.Policy.Name)
			case c.Policy.Generation == 1 && c.Policy.ResourceVersion != "" && !known[c.Policy.Name]:
				typ = watch.Added
				known[c.Policy.Name] = true
			}
			if !c.Deleted && !match(c.Policy) {
				continue
			}
			if !w.send(watch.Event{Type: typ, Object: c.Policy}) {
				return
			}
		}
	}()
	return w, nil
}

type watcher struct {
	result chan watch.Event
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

func (w *watcher) ResultChan() <-chan watch.Event { return w.result }
func (w *watcher) Stop()                          { w.once.Do(func() { close(w.done); w.cancel() }) }
func (w *watcher) send(e watch.Event) bool {
	select {
	case w.result <- e:
		return true
	case <-w.done:
		return false
	}
}

// ConvertToTable implements rest.TableConvertor.
func (r *REST) ConvertToTable(_ context.Context, obj runtime.Object, _ runtime.Object) (*metav1.Table, error) {
	t := &metav1.Table{ColumnDefinitions: []metav1.TableColumnDefinition{
		{Name: "Name", Type: "string", Format: "name"},
		{Name: "Resource", Type: "string", Description: "The kind of object (apiGroup/kind) the policy covers."},
		{Name: "Rules", Type: "integer"},
		{Name: "Age", Type: "string"},
	}}
	add := func(p *v1alpha1.ActivityPolicy) {
		res := p.Spec.Resource.Kind
		if p.Spec.Resource.APIGroup != "" {
			res = p.Spec.Resource.APIGroup + "/" + res
		}
		t.Rows = append(t.Rows, metav1.TableRow{Cells: []any{p.Name, res, int64(len(p.Spec.EventRules)),
			duration.HumanDuration(r.now().Sub(p.CreationTimestamp.Time))}, Object: runtime.RawExtension{Object: p}})
	}
	switch o := obj.(type) {
	case *v1alpha1.ActivityPolicy:
		add(o)
	case *v1alpha1.ActivityPolicyList:
		for i := range o.Items {
			add(&o.Items[i])
		}
		t.ResourceVersion = o.ResourceVersion
	default:
		return nil, fmt.Errorf("cannot print %T as a table", obj)
	}
	return t, nil
}
