package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

var dumpDir = flag.String("dump", "", "write every case's normalized answers from both servers into this directory, for reading")

var updateKnown = flag.Bool("update-known", false,
	"rewrite testdata/known/*.json with eventpipe's current answers for the cases marked knownDiff")

// Media types the cases send and ask for.
const (
	mediaJSON     = "application/json"
	mediaYAML     = "application/yaml"
	mediaProtobuf = "application/vnd.kubernetes.protobuf"
	// mediaTable is what kubectl get asks for: a Table, else the object.
	mediaTable = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
	// Patch types.
	mediaMergePatch     = "application/merge-patch+json"
	mediaStrategicPatch = "application/strategic-merge-patch+json"
	mediaJSONPatch      = "application/json-patch+json"
	mediaApplyPatch     = "application/apply-patch+yaml"
)

// tcase is one scripted conversation, played against both servers in a
// fresh namespace of the same name.
type tcase struct {
	name  string
	steps []step
	// genPrefixes are the generateName prefixes the case uses (see
	// normalizer).
	genPrefixes []string
	// knownDiff, when set, says why eventpipe's answers are known to differ
	// from kube-apiserver's. The case still runs; its eventpipe answers
	// must equal the ones recorded in testdata/known/<name>.json, so the
	// difference cannot change unnoticed. It is about eventpipe's own API
	// only: TestConformanceThroughEtcdFront requires such a case to match.
	knownDiff string
}

// step is one request.
type step struct {
	method string
	// path may hold {{ns}} and saved values (see vars).
	path string
	// query is key, value, key, value...; values are expanded like path.
	query       []string
	accept      string
	contentType string
	body        string
	// protoBody sends body (JSON) encoded as protobuf.
	protoBody bool
	// eventually retries the step (a read) until both answers agree or
	// eventuallyFor passes: for reads at resourceVersion=0, which both
	// servers may answer from what they have cached (see list).
	eventually bool
	// watch reads this many watch events.
	watch int
	// pick, when set, keeps only part of both bodies for the comparison:
	// for documents that also describe what eventpipe does not serve by
	// design (kube's other resources in /api/v1 discovery).
	pick func(body any) any
	// save keeps this answer's metadata (name, uid, resourceVersion,
	// continue) under this prefix: {{prefix.rv}} and so on.
	save string
}

// eventuallyFor bounds an eventually step.
const eventuallyFor = 10 * time.Second

// vars are one server's values saved by a case: {{rv}}, {{uid}}, {{name}}
// and {{continue}} from the last answer that had them, {{P.rv}} and so on
// for a step saved as P.
type vars map[string]string

var placeholder = regexp.MustCompile(`\{\{([A-Za-z0-9_.]+)\}\}`)

func (v vars) expand(s string) string {
	return placeholder.ReplaceAllStringFunc(s, func(m string) string {
		k := m[2 : len(m)-2]
		if val, ok := v[k]; ok {
			return val
		}
		return m
	})
}

// remember saves what a later step may refer to.
func (v vars) remember(ex *exchange, prefix string) {
	body, _ := ex.Body.(map[string]any)
	if y, ok := body["yaml"].(map[string]any); ok {
		body = y
	}
	if p, ok := body["protobuf"].(map[string]any); ok {
		body = p
	}
	md, _ := body["metadata"].(map[string]any)
	for _, k := range []string{"name", "uid", "resourceVersion", "continue"} {
		s, ok := md[k].(string)
		if !ok || s == "" {
			continue
		}
		key := k
		if k == "resourceVersion" {
			key = "rv"
		}
		v[key] = s
		if prefix != "" {
			v[prefix+"."+key] = s
		}
	}
}

// player plays a case against one server.
type player struct {
	s    *server
	vars vars
}

func (p *player) play(ctx context.Context, st step) (*exchange, error) {
	q := url.Values{}
	for i := 0; i+1 < len(st.query); i += 2 {
		q.Add(st.query[i], p.vars.expand(st.query[i+1]))
	}
	h := http.Header{}
	h.Set("User-Agent", userAgent)
	if st.accept != "" {
		h.Set("Accept", st.accept)
	}
	var body []byte
	if st.body != "" || st.contentType != "" {
		body = []byte(p.vars.expand(st.body))
		if st.protoBody {
			var err error
			if body, err = toProtobuf(body); err != nil {
				return nil, err
			}
		}
		h.Set("Content-Type", st.contentType)
	}
	return p.s.do(ctx, st.method, p.vars.expand(st.path), q.Encode(), h, body, st.watch)
}

// toProtobuf encodes a JSON object as Kubernetes protobuf.
func toProtobuf(j []byte) ([]byte, error) {
	obj, _, err := codecs.UniversalDeserializer().Decode(j, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("protoBody: %w", err)
	}
	var buf bytes.Buffer
	if err := protoEncoder.Encode(obj, &buf); err != nil {
		return nil, fmt.Errorf("protoBody: %w", err)
	}
	return buf.Bytes(), nil
}

// stepResult is one step's pair of normalized answers: Want from the
// reference (kube-apiserver over etcd), Got from the server compared with
// it. Got is what testdata/known records, under "eventpipe".
type stepResult struct {
	Request string    `json:"request"`
	Want    *exchange `json:"-"`
	Got     *exchange `json:"eventpipe"`
}

// dump writes a case's answers from both servers for reading (-dump), into
// a directory per test, each answer under its server's name.
func dump(t *testing.T, c tcase, results []stepResult, want, got *server) error {
	var out []map[string]any
	for _, r := range results {
		out = append(out, map[string]any{"request": r.Request, want.name: r.Want, got.name: r.Got})
	}
	// t is the case's subtest: TestX/case/NAME.
	dir := filepath.Join(*dumpDir, strings.SplitN(t.Name(), "/", 2)[0])
	path := filepath.Join(dir, strings.NewReplacer("/", "_", " ", "_").Replace(c.name)+".json")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(pretty(out)+"\n"), 0o644)
}

func (r stepResult) equal() bool { return reflect.DeepEqual(r.Want, r.Got) }

// describe names a step for messages: "GET /api/v1/...?...".
func describe(st step) string {
	s := st.method + " " + st.path
	if len(st.query) > 0 {
		var parts []string
		for i := 0; i+1 < len(st.query); i += 2 {
			parts = append(parts, st.query[i]+"="+st.query[i+1])
		}
		s += "?" + strings.Join(parts, "&")
	}
	if st.contentType != "" {
		s += " [" + st.contentType + "]"
	}
	if st.accept != "" {
		s += " accept=" + st.accept
	}
	if st.watch > 0 {
		s += fmt.Sprintf(" (watch, %d events)", st.watch)
	}
	return s
}

// run plays every step of c against both servers (want is the reference)
// and returns the pairs of answers. It stops at a transport error.
func run(ctx context.Context, c tcase, ns string, want, got *server) ([]stepResult, error) {
	norm := normalizer{genPrefixes: c.genPrefixes, ageIdx: new([]int)}
	k := &player{s: want, vars: vars{"ns": ns}}
	e := &player{s: got, vars: vars{"ns": ns}}
	var out []stepResult
	for _, st := range c.steps {
		deadline := time.Now().Add(eventuallyFor)
		var res stepResult
		for {
			kx, err := k.play(ctx, st)
			if err != nil {
				return out, fmt.Errorf("%s: %w", want.name, err)
			}
			ex, err := e.play(ctx, st)
			if err != nil {
				return out, fmt.Errorf("%s: %w", got.name, err)
			}
			// Saved values are raw: remember before normalizing.
			k.vars.remember(kx, st.save)
			e.vars.remember(ex, st.save)
			norm.exchange(kx)
			norm.exchange(ex)
			if st.pick != nil {
				kx.Body, ex.Body = st.pick(kx.Body), st.pick(ex.Body)
			}
			res = stepResult{Request: describe(st), Want: kx, Got: ex}
			if res.equal() || !st.eventually || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		out = append(out, res)
	}
	return out, nil
}

// knownPath is where a known difference's eventpipe answers are kept.
func knownPath(name string) string {
	return filepath.Join("testdata", "known", strings.NewReplacer("/", "_", " ", "_").Replace(name)+".json")
}

// checkKnown compares a known-different case's eventpipe answers with the
// recorded ones (or records them with -update-known).
func checkKnown(t *testing.T, c tcase, ns string, results []stepResult) {
	t.Helper()
	// The recording must not depend on when or where in the suite the case
	// ran: the fixtures' times and the case's namespace are named instead.
	got := strings.NewReplacer(
		ns, "{{ns}}", tsFirst, "<fixture first time>", tsLast, "<fixture last time>", tsMicro, "<fixture event time>",
	).Replace(pretty(results) + "\n")
	path := knownPath(c.name)
	if *updateKnown {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("known difference without a recording: %v (run with -update-known)", err)
	}
	var w, g any
	_ = json.Unmarshal(want, &w)
	_ = json.Unmarshal([]byte(got), &g)
	if !reflect.DeepEqual(w, g) {
		assert.Equal(t, string(want), got, "eventpipe's answers for known difference %q changed (%s); "+
			"if intended, rerun with -update-known", c.name, path)
	}
}

// nsName is the namespace a case runs in on both servers.
func nsName(i int) string { return fmt.Sprintf("conf-%03d", i) }
