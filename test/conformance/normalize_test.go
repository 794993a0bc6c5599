package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"regexp"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
)

// scheme decodes protobuf answers (Events of both groups, Status, Table)
// and encodes protobuf request bodies.
var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := metav1.AddMetaToScheme(s); err != nil {
		panic(err)
	}
	return s
}()

var (
	codecs        = serializer.NewCodecFactory(scheme)
	protoEncoder  = protobuf.NewSerializer(scheme, scheme)
	protobufMedia = "application/vnd.kubernetes.protobuf"
)

// decodeBody turns a response body into JSON values: JSON as it is, YAML
// converted, protobuf decoded with the Kubernetes scheme and re-encoded as
// JSON (so the comparison is of content, not of byte layout). Anything else
// is returned as text.
func decodeBody(contentType string, raw []byte) (any, string, error) {
	if len(raw) == 0 {
		return nil, "", nil
	}
	mt, _, _ := mime.ParseMediaType(contentType)
	switch mt {
	case "application/json":
		v, err := decodeJSON(raw)
		if err != nil {
			return nil, "", fmt.Errorf("JSON body: %w: %s", err, raw)
		}
		return v, "", nil
	case "application/yaml":
		j, err := utilyaml.ToJSON(raw)
		if err != nil {
			return nil, "", fmt.Errorf("YAML body: %w: %s", err, raw)
		}
		v, err := decodeJSON(j)
		return map[string]any{"yaml": v}, "", err
	case protobufMedia:
		v, err := decodeProtobuf(raw)
		if err != nil {
			return nil, "", fmt.Errorf("protobuf body: %w", err)
		}
		return map[string]any{"protobuf": v}, "", nil
	}
	return nil, string(raw), nil
}

// protobufMagic starts every Kubernetes protobuf body.
var protobufMagic = []byte{0x6b, 0x38, 0x73, 0x00}

// decodeProtobuf decodes a Kubernetes protobuf body: the runtime.Unknown
// envelope, then the object by the kind it names. The apiVersion and kind
// of the result are the envelope's, as sent (unversioned types such as
// discovery documents go without apiVersion).
func decodeProtobuf(raw []byte) (any, error) {
	if !bytes.HasPrefix(raw, protobufMagic) {
		return nil, fmt.Errorf("no protobuf magic prefix")
	}
	var unk runtime.Unknown
	if err := unk.Unmarshal(raw[len(protobufMagic):]); err != nil {
		return nil, err
	}
	gv, err := schema.ParseGroupVersion(unk.APIVersion)
	if err != nil {
		return nil, err
	}
	if unk.APIVersion == "" {
		gv = schema.GroupVersion{Version: "v1"}
	}
	obj, err := scheme.New(gv.WithKind(unk.Kind))
	if err != nil {
		return nil, err
	}
	pb, ok := obj.(interface{ Unmarshal([]byte) error })
	if !ok {
		return nil, fmt.Errorf("%T is no protobuf message", obj)
	}
	if err := pb.Unmarshal(unk.Raw); err != nil {
		return nil, err
	}
	j, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	v, err := decodeJSON(j)
	if err != nil {
		return nil, err
	}
	if m, ok := v.(map[string]any); ok {
		m["apiVersion"], m["kind"] = unk.APIVersion, unk.Kind
	}
	return v, nil
}

// decodeProtobufWatchEvent decodes one frame of a protobuf watch stream: a
// WatchEvent, without envelope, whose object is a protobuf body itself.
func decodeProtobufWatchEvent(frame []byte) (any, error) {
	var we metav1.WatchEvent
	if err := we.Unmarshal(frame); err != nil {
		return nil, err
	}
	obj, err := decodeProtobuf(we.Object.Raw)
	if err != nil {
		return nil, err
	}
	return map[string]any{"type": we.Type, "object": obj}, nil
}

func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// normalizer removes from an answer what legitimately differs between two
// servers given the same requests, and nothing else.
type normalizer struct {
	// genPrefixes are generateName prefixes the case used: the five random
	// characters the server appends differ between servers.
	genPrefixes []string
	// ageIdx are the age columns of the last Table seen with column
	// definitions: a watch sends them with its first Table only, and the
	// rows of later ones have ages too.
	ageIdx *[]int
}

// serverSetMeta are the metadata fields whose values a server picks on its
// own: the uid (random), resourceVersion (etcd revision vs. JetStream
// sequence) and creationTimestamp (the server's clock). Whether they are
// set is compared; their values are not.
var serverSetMeta = []string{"uid", "resourceVersion", "creationTimestamp"}

// ageCell matches an age as the Table's time columns print it (the
// apiserver's HumanDuration): it depends on when the server answered.
var ageCell = regexp.MustCompile(`^([0-9]+[smhdy])+$`)

// ageColumns are the Table columns that hold ages.
var ageColumns = map[string]bool{"Last Seen": true, "First Seen": true}

// rvInText matches resourceVersions quoted in error messages ("Too large
// resource version: 123, current: 45", "the ResourceVersion in the
// precondition (17) does not match the ResourceVersion in record (18)"):
// they are the server's own numbering.
var rvInText = regexp.MustCompile(`(?i)(resource ?version(?: in (?:the )?(?:precondition|record|object meta))?:? \(?|current: )([0-9]+)`)

// uidInText matches uids in error messages (delete preconditions name the
// object's uid).
var uidInText = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

func (n normalizer) value(v any) any {
	switch v := v.(type) {
	case map[string]any:
		return n.object(v)
	case []any:
		for i := range v {
			v[i] = n.value(v[i])
		}
		return v
	case string:
		return n.text(v)
	}
	return v
}

func (n normalizer) text(s string) string {
	for _, p := range n.genPrefixes {
		s = regexp.MustCompile(regexp.QuoteMeta(p)+`[a-z0-9]{5}\b`).ReplaceAllString(s, p+"<random>")
	}
	return s
}

// statusText normalizes an error message: server-assigned uids and
// resourceVersions quoted in it.
func (n normalizer) statusText(s string) string {
	s = uidInText.ReplaceAllString(s, "<uid>")
	return rvInText.ReplaceAllString(s, "${1}<rv>")
}

func (n normalizer) object(m map[string]any) map[string]any {
	if md, ok := m["metadata"].(map[string]any); ok {
		for _, k := range serverSetMeta {
			if v, ok := md[k]; ok && v != "" && v != nil {
				md[k] = "<set by the server>"
			}
		}
		// managedFields are compared, but for the time of each entry (the
		// server's clock).
		if mfs, ok := md["managedFields"].([]any); ok {
			for _, mf := range mfs {
				if m, ok := mf.(map[string]any); ok && m["time"] != nil {
					m["time"] = "<time>"
				}
			}
		}
		// A continue token encodes the server's storage key and revision;
		// only whether there is one is comparable (its use is compared by
		// the next page).
		if c, ok := md["continue"].(string); ok && c != "" {
			md["continue"] = "<continue>"
		}
		// The watch-list end bookmark carries only a resourceVersion and
		// this annotation; the resourceVersion went above.
	}
	if m["kind"] == "Status" {
		if d, ok := m["details"].(map[string]any); ok {
			delete(d, "uid")
		}
		if msg, ok := m["message"].(string); ok {
			m["message"] = n.statusText(msg)
		}
		if d, ok := m["details"].(map[string]any); ok {
			if cs, ok := d["causes"].([]any); ok {
				for _, c := range cs {
					if cm, ok := c.(map[string]any); ok {
						if msg, ok := cm["message"].(string); ok {
							cm["message"] = n.statusText(msg)
						}
					}
				}
			}
		}
	}
	if m["kind"] == "Table" {
		n.table(m)
	}
	for k, v := range m {
		m[k] = n.value(v)
	}
	return m
}

// table replaces the age cells of a Table with <age>.
func (n normalizer) table(m map[string]any) {
	cols, _ := m["columnDefinitions"].([]any)
	var ageIdx []int
	for i, c := range cols {
		if cm, ok := c.(map[string]any); ok && ageColumns[fmt.Sprint(cm["name"])] {
			ageIdx = append(ageIdx, i)
		}
	}
	if n.ageIdx != nil {
		if cols == nil {
			ageIdx = *n.ageIdx
		} else {
			*n.ageIdx = ageIdx
		}
	}
	rows, _ := m["rows"].([]any)
	for _, r := range rows {
		rm, ok := r.(map[string]any)
		if !ok {
			continue
		}
		cells, _ := rm["cells"].([]any)
		for _, i := range ageIdx {
			if i < len(cells) {
				if s, ok := cells[i].(string); ok && ageCell.MatchString(s) {
					cells[i] = "<age>"
				}
			}
		}
	}
}

// normalizeExchange normalizes one answer in place.
func (n normalizer) exchange(ex *exchange) {
	ex.Body = n.value(ex.Body)
	ex.Text = n.text(ex.Text)
	for i, w := range ex.Warnings {
		ex.Warnings[i] = n.text(w)
	}
	// Parameters of the content type are compared; their order is not
	// meaningful.
	if mt, params, err := mime.ParseMediaType(ex.ContentType); err == nil {
		keys := make([]string, 0, len(params))
		for k := range params {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := []string{mt}
		for _, k := range keys {
			parts = append(parts, k+"="+params[k])
		}
		ex.ContentType = strings.Join(parts, ";")
	}
}

// pretty renders a value for comparison and for failure messages.
func pretty(v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Sprintf("<unprintable: %v>", err)
	}
	return string(b)
}
