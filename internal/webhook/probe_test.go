package webhook

import (
	"encoding/json"
	"reflect"
	"testing"
)

// probeSeeds are shapes the receiver sees and near misses of them.
var probeSeeds = []string{
	`{"type":"ADDED","object":{"metadata":{"name":"a","namespace":"n"},"reason":"Pulled","count":1}}`,
	`{"apiVersion":"v1","kind":"EventList","items":[{"metadata":{"name":"a"}},null,{"x":[1,2.5e-3,-0,true,false,null]}]}`,
	`{"apiVersion":"events.k8s.io/v1","kind":"Event","note":"a \"quoted\" \\ \/ \u00e9 \ud83d\ude00 note","regarding":{}}`,
	`{"kind":"Event","kind":"EventList","items":[],"items":null}`,
	`{"Kind":"Event"}`, `{"KIND":"x"}`, `{"kin\u0064":"Event"}`, `{"\u212aind":"Event"}`,
	`{"kind":5}`, `{"kind":null}`, `{"items":"x"}`, `{"items":{}}`, `{"object":null}`,
	`{}`, ` { } `, `[]`, `null`, `"x"`, `{"a":01}`, `{"a":1.}`, `{"a":.5}`, `{"a":1e}`, `{"a":-}`,
	`{"a":"x` + "\x01" + `"}`, `{"a":"\x"}`, `{"a":"\u12"}`, `{"a":tru}`, `{"a":1,}`, `{,}`, `{"a" 1}`,
	`{"a":1}x`, `{"a":[1,]}`, `{"type":"ADDED"`, "{\"kind\":\"\xff\"}", "{\"k\xffind\":1}",
	`{"type":"MODIFIED","object":{"count":2,"series":{"count":3}},"extra":{"deep":[[[[[]]]]]}}`,
}

func FuzzReadProbe(f *testing.F) {
	for _, s := range probeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		checkProbe(t, raw)
	})
}

func TestReadProbeSeeds(t *testing.T) {
	for _, s := range probeSeeds {
		checkProbe(t, []byte(s))
	}
	// The plain shapes take the fast path; otherwise it saves nothing.
	for _, s := range probeSeeds[:4] {
		var pr probe
		if !readProbe([]byte(s), &pr) {
			t.Errorf("%s: not read by the fast path", s)
		}
	}
}

// checkProbe holds readProbe to encoding/json: whenever it answers, the
// input is valid JSON and encoding/json fills the probe identically.
func checkProbe(t *testing.T, raw []byte) {
	t.Helper()
	var got probe
	if !readProbe(raw, &got) {
		return
	}
	if !json.Valid(raw) {
		t.Fatalf("readProbe accepted invalid JSON %q", raw)
	}
	var want probe
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatalf("readProbe accepted %q, which encoding/json refuses: %v", raw, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q:\nreadProbe     %#v\nencoding/json %#v", raw, got, want)
	}
}
