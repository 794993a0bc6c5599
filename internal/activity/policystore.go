package activity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	activityv1alpha1 "github.com/eventpipe/eventpipe/pkg/apis/activity/v1alpha1"
)

// Errors of the policy store; the registry maps them to API statuses.
var (
	ErrPolicyNotFound = errors.New("activity policy not found")
	ErrPolicyExists   = errors.New("activity policy already exists")
	ErrPolicyConflict = errors.New("activity policy was modified concurrently")
)

// PolicyStore keeps ActivityPolicies durably in the PolicyBucket key-value
// bucket, one key per policy name. A policy's resourceVersion is its key's
// revision, which is the sequence of the bucket's stream, so the same
// list-then-watch-from-resourceVersion contract as events holds. It is safe
// for concurrent use.
type PolicyStore struct {
	js jetstream.JetStream
	kv jetstream.KeyValue
}

// NewPolicyStore opens the bucket (Ensure creates it).
func NewPolicyStore(ctx context.Context, js jetstream.JetStream) (*PolicyStore, error) {
	kv, err := js.KeyValue(ctx, PolicyBucket)
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", PolicyBucket, err)
	}
	return &PolicyStore{js: js, kv: kv}, nil
}

// kvStream is the stream behind the bucket.
const kvStream = "KV_" + PolicyBucket

func decodePolicy(b []byte, rev uint64) (*activityv1alpha1.ActivityPolicy, error) {
	p := &activityv1alpha1.ActivityPolicy{}
	if err := json.Unmarshal(b, p); err != nil {
		return nil, fmt.Errorf("decode stored policy (revision %d): %w", rev, err)
	}
	p.ResourceVersion = fmt.Sprint(rev)
	return p, nil
}

func encodePolicy(p *activityv1alpha1.ActivityPolicy) ([]byte, error) {
	c := p.DeepCopy()
	c.ResourceVersion = ""
	c.APIVersion, c.Kind = activityv1alpha1.SchemeGroupVersion.String(), "ActivityPolicy"
	return json.Marshal(c)
}

// Get returns the policy called name.
func (s *PolicyStore) Get(ctx context.Context, name string) (*activityv1alpha1.ActivityPolicy, error) {
	e, err := s.kv.Get(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, ErrPolicyNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read policy %s: %w", name, err)
	}
	return decodePolicy(e.Value(), e.Revision())
}

// List returns every policy and a resourceVersion at least as new as each
// of them; a watch from it misses no later change.
func (s *PolicyStore) List(ctx context.Context) ([]activityv1alpha1.ActivityPolicy, uint64, error) {
	st, err := s.js.Stream(ctx, kvStream)
	if err != nil {
		return nil, 0, fmt.Errorf("list policies: %w", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("list policies: %w", err)
	}
	rv := info.State.LastSeq
	w, err := s.kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, 0, fmt.Errorf("list policies: %w", err)
	}
	defer w.Stop()
	var out []activityv1alpha1.ActivityPolicy
	for e := range w.Updates() {
		if e == nil {
			break // end of the current values
		}
		// A value newer than the snapshot was written meanwhile: answer at
		// its revision. Changes between rv and it come again to a watch from
		// it at most once more, which a client tolerates as a re-delivery.
		rv = max(rv, e.Revision())
		p, err := decodePolicy(e.Value(), e.Revision())
		if err != nil {
			return nil, 0, err
		}
		out = append(out, *p)
	}
	return out, rv, nil
}

// Create stores a new policy and returns it with its resourceVersion.
func (s *PolicyStore) Create(ctx context.Context, p *activityv1alpha1.ActivityPolicy) (*activityv1alpha1.ActivityPolicy, error) {
	b, err := encodePolicy(p)
	if err != nil {
		return nil, err
	}
	rev, err := s.kv.Create(ctx, p.Name, b)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return nil, ErrPolicyExists
	}
	if err != nil {
		return nil, fmt.Errorf("create policy %s: %w", p.Name, err)
	}
	return decodePolicy(b, rev)
}

// Update replaces a policy whose current revision is rev.
func (s *PolicyStore) Update(ctx context.Context, p *activityv1alpha1.ActivityPolicy, rev uint64) (*activityv1alpha1.ActivityPolicy, error) {
	b, err := encodePolicy(p)
	if err != nil {
		return nil, err
	}
	n, err := s.kv.Update(ctx, p.Name, b, rev)
	if err != nil {
		if eventlog.IsWrongLastSequence(err) {
			return nil, ErrPolicyConflict
		}
		return nil, fmt.Errorf("update policy %s: %w", p.Name, err)
	}
	return decodePolicy(b, n)
}

// Delete removes a policy whose current revision is rev.
func (s *PolicyStore) Delete(ctx context.Context, name string, rev uint64) error {
	if err := s.kv.Delete(ctx, name, jetstream.LastRevision(rev)); err != nil {
		if eventlog.IsWrongLastSequence(err) {
			return ErrPolicyConflict
		}
		return fmt.Errorf("delete policy %s: %w", name, err)
	}
	return nil
}

// FirstRevision returns the oldest revision the bucket still holds; a watch
// from before it cannot be served in full.
func (s *PolicyStore) FirstRevision(ctx context.Context) (uint64, error) {
	st, err := s.js.Stream(ctx, kvStream)
	if err != nil {
		return 0, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.FirstSeq, nil
}

// PolicyChange is one change of a policy, for watches.
type PolicyChange struct {
	// Deleted is set for a delete; Policy then holds only name and
	// resourceVersion.
	Deleted bool
	Policy  *activityv1alpha1.ActivityPolicy
}

// Watch delivers every change after revision from, in order, until ctx
// ends. The channel is closed when the watch ends.
func (s *PolicyStore) Watch(ctx context.Context, from uint64) (<-chan PolicyChange, error) {
	cons, err := s.js.OrderedConsumer(ctx, kvStream, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from + 1,
	})
	if err != nil {
		return nil, fmt.Errorf("watch policies from %d: %w", from, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return nil, fmt.Errorf("watch policies from %d: %w", from, err)
	}
	ch := make(chan PolicyChange, 16)
	go func() {
		defer close(ch)
		stop := context.AfterFunc(ctx, it.Stop)
		defer stop()
		for {
			m, err := it.Next()
			if err != nil {
				return
			}
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			name := m.Subject()[len("$KV."+PolicyBucket+"."):]
			var c PolicyChange
			if op := m.Headers().Get("KV-Operation"); op == "DEL" || op == "PURGE" {
				c = PolicyChange{Deleted: true, Policy: &activityv1alpha1.ActivityPolicy{}}
				c.Policy.Name, c.Policy.ResourceVersion = name, fmt.Sprint(md.Sequence.Stream)
			} else {
				p, err := decodePolicy(m.Data(), md.Sequence.Stream)
				if err != nil {
					continue
				}
				c = PolicyChange{Policy: p}
			}
			select {
			case ch <- c:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch, nil
}

// InstallBuiltins creates every shipped policy that does not exist yet and
// leaves existing ones (edited or not) alone. It returns the names created.
func InstallBuiltins(ctx context.Context, s *PolicyStore) ([]string, error) {
	ps, err := Builtins()
	if err != nil {
		return nil, err
	}
	var created []string
	for _, p := range ps {
		p.UID = newUID()
		p.Generation = 1
		p.CreationTimestamp.Time = time.Now().UTC().Truncate(time.Second)
		_, err := s.Create(ctx, p)
		if errors.Is(err, ErrPolicyExists) {
			continue
		}
		if err != nil {
			return created, err
		}
		created = append(created, p.Name)
	}
	return created, nil
}

// Follow keeps engine in line with the stored policies until ctx ends. It
// returns once the current policies are loaded, so nothing is evaluated
// against an empty set at start-up. A stored policy that does not compile
// (written by another version) is skipped and counted.
func Follow(ctx context.Context, s *PolicyStore, engine *Engine, reg prometheus.Registerer, log *slog.Logger) error {
	bad := prometheus.NewGauge(prometheus.GaugeOpts{Name: "eventpipe_activity_policies_invalid",
		Help: "Stored ActivityPolicies that do not compile and are ignored."})
	loaded := prometheus.NewGauge(prometheus.GaugeOpts{Name: "eventpipe_activity_policies",
		Help: "ActivityPolicies in effect."})
	if reg != nil {
		reg.MustRegister(bad, loaded)
	}
	w, err := s.kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("follow policies: %w", err)
	}
	var once sync.Once
	ready := make(chan struct{})
	invalid := map[string]bool{}
	go func() {
		defer w.Stop()
		for e := range w.Updates() {
			if e == nil {
				once.Do(func() { close(ready) })
				continue
			}
			name := e.Key()
			if e.Operation() != jetstream.KeyValuePut {
				engine.Remove(name)
				delete(invalid, name)
			} else if p, err := decodePolicy(e.Value(), e.Revision()); err != nil {
				log.Error("stored activity policy cannot be read; ignoring it", "policy", name, "err", err)
				invalid[name] = true
			} else if cp, errs := Compile(p); len(errs) > 0 {
				log.Error("stored activity policy does not compile; ignoring it", "policy", name, "err", errs.ToAggregate())
				engine.Remove(name)
				invalid[name] = true
			} else {
				engine.Put(cp)
				delete(invalid, name)
				log.Info("activity policy in effect", "policy", name, "resourceVersion", p.ResourceVersion)
			}
			bad.Set(float64(len(invalid)))
			loaded.Set(float64(len(engine.Set().Policies())))
		}
		once.Do(func() { close(ready) })
	}()
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
