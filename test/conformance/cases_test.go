package conformance

import (
	"strings"
)

// allCases is the suite: core/v1 ("core/...") and events.k8s.io/v1
// ("events/...") cases, then the ones that mix the two ("both/...").
func allCases() []tcase {
	var cs []tcase
	cs = append(cs, coreCRUDCases()...)
	cs = append(cs, patchCases()...)
	cs = append(cs, deleteCases()...)
	cs = append(cs, coreFieldSelectorCases()...)
	cs = append(cs, eventsFieldSelectorCases()...)
	cs = append(cs, labelSelectorCases()...)
	cs = append(cs, listCases()...)
	cs = append(cs, watchCases()...)
	cs = append(cs, consistentReadCases()...)
	cs = append(cs, badInputCases()...)
	cs = append(cs, eventsCases()...)
	cs = append(cs, tableCases()...)
	cs = append(cs, discoveryCases()...)
	cs = append(cs, moreCases()...)
	return cs
}

func coreCRUDCases() []tcase {
	return []tcase{
		{name: "core/create-get", steps: []step{
			post(corePath(""), coreEvent("web-1.a")),
			get(corePath("/web-1.a")),
		}},
		{name: "core/create-yaml", steps: []step{
			post(corePath(""), `apiVersion: v1
kind: Event
metadata:
  name: web-1.yaml
  namespace: {{ns}}
involvedObject:
  kind: Pod
  name: web-1
  namespace: {{ns}}
reason: Pulled
message: Successfully pulled image
type: Normal
count: 1
firstTimestamp: "`+tsFirst+`"
lastTimestamp: "`+tsLast+`"
source:
  component: kubelet
`).as(mediaYAML).accepting(mediaYAML),
			get(corePath("/web-1.yaml")).accepting(mediaYAML),
		}},
		{name: "core/create-protobuf", steps: []step{
			post(corePath(""), coreEvent("web-1.proto")).proto().accepting(mediaProtobuf),
			get(corePath("/web-1.proto")).accepting(mediaProtobuf),
			list(corePath("")).accepting(mediaProtobuf),
		}},
		{name: "core/create-exists", steps: []step{
			post(corePath(""), coreEvent("web-1.a")),
			post(corePath(""), coreEvent("web-1.a")),
		}},
		{name: "core/get-missing", steps: []step{
			get(corePath("/nothing-here")),
			get(corePath("/nothing-here")).accepting(mediaProtobuf),
			get(corePath("/nothing-here")).accepting(mediaYAML),
		}},
		{name: "core/partial-object-metadata", steps: []step{
			// What metadata informers (the garbage collector, quota) ask for.
			post(corePath(""), coreEvent("web-1.a", labels("app", "web"))),
			get(corePath("/web-1.a")).accepting("application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"),
			list(corePath("")).accepting("application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"),
			list(evPath("")).accepting("application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"),
		}},
		{name: "core/create-generateName", genPrefixes: []string{"web-1."}, steps: []step{
			post(corePath(""), coreEvent("", set("metadata.generateName", "web-1."), unset("metadata.name"))),
			get(corePath("/{{name}}")),
		}},
		{name: "core/create-dry-run", steps: []step{
			post(corePath(""), coreEvent("web-1.dry"), "dryRun", "All"),
			get(corePath("/web-1.dry")),
			list(corePath("")),
		}},
		{name: "core/create-dry-run-bad-value", steps: []step{
			post(corePath(""), coreEvent("web-1.dry"), "dryRun", "Some"),
		}},
		{name: "core/update", steps: []step{
			post(corePath(""), coreEvent("web-1.a")),
			put(corePath("/web-1.a"), coreEvent("web-1.a", set("count", 2), set("message", "again"))),
			get(corePath("/web-1.a")),
		}},
		{name: "core/update-precondition-conflict", steps: []step{
			post(corePath(""), coreEvent("web-1.a")).saved("v1"),
			put(corePath("/web-1.a"), coreEvent("web-1.a", set("metadata.resourceVersion", "{{v1.rv}}"), set("count", 2))),
			put(corePath("/web-1.a"), coreEvent("web-1.a", set("metadata.resourceVersion", "{{v1.rv}}"), set("count", 3))),
			get(corePath("/web-1.a")),
		}},
		{name: "core/update-creates", steps: []step{
			put(corePath("/web-1.new"), coreEvent("web-1.new")),
			get(corePath("/web-1.new")),
		}},
		{name: "core/update-missing-with-resourceVersion", steps: []step{
			put(corePath("/web-1.new"), coreEvent("web-1.new", set("metadata.resourceVersion", "12345"))),
		}},
		{name: "core/update-uid-precondition", steps: []step{
			post(corePath(""), coreEvent("web-1.a")),
			put(corePath("/web-1.a"), coreEvent("web-1.a", set("metadata.uid", "00000000-0000-0000-0000-000000000000"))),
			put(corePath("/web-1.a"), coreEvent("web-1.a", set("metadata.uid", "{{uid}}"), set("count", 2))),
		}},
		{name: "core/create-with-resourceVersion", knownDiff: "kube-apiserver refuses a create that sets metadata.resourceVersion " +
			"with 500 InternalError; eventpipe refuses it with the same text as 400 BadRequest (invariant 7 in docs/architecture.md: never a 5xx for bad input)",
			steps: []step{
				post(corePath(""), coreEvent("web-1.a", set("metadata.resourceVersion", "5"))),
				get(corePath("/web-1.a")),
				post(corePath(""), coreEvent("web-1.a", set("metadata.resourceVersion", "5")), "dryRun", "All"),
			}},
		{name: "core/update-name-mismatch", steps: []step{
			post(corePath(""), coreEvent("web-1.a")),
			put(corePath("/web-1.a"), coreEvent("web-1.b")),
		}},
		{name: "core/update-dry-run", steps: []step{
			post(corePath(""), coreEvent("web-1.a")),
			put(corePath("/web-1.a"), coreEvent("web-1.a", set("count", 9)), "dryRun", "All"),
			get(corePath("/web-1.a")),
		}},
		{name: "core/update-immutable-fields", steps: []step{
			post(corePath(""), coreEvent("web-1.a")),
			put(corePath("/web-1.a"), coreEvent("web-1.a", set("involvedObject.name", "web-2"), set("reason", "Other"))),
		}},
	}
}

func patchCases() []tcase {
	return []tcase{
		{name: "core/patch-merge", steps: []step{
			post(corePath(""), coreEvent("web-1.a")),
			patch(corePath("/web-1.a"), mediaMergePatch, `{"count":2,"lastTimestamp":"`+tsLast+`","metadata":{"labels":{"x":"y"}}}`),
		}},
		{name: "core/patch-strategic", steps: []step{
			post(corePath(""), coreEvent("web-1.a", labels("a", "1"))),
			patch(corePath("/web-1.a"), mediaStrategicPatch, `{"count":3,"metadata":{"labels":{"b":"2"}}}`),
		}},
		{name: "core/patch-json", steps: []step{
			post(corePath(""), coreEvent("web-1.a")),
			patch(corePath("/web-1.a"), mediaJSONPatch, `[{"op":"replace","path":"/count","value":4},{"op":"add","path":"/metadata/annotations","value":{"k":"v"}}]`),
		}},
		{name: "core/patch-json-test-fails", steps: []step{
			post(corePath(""), coreEvent("web-1.a")),
			patch(corePath("/web-1.a"), mediaJSONPatch, `[{"op":"test","path":"/count","value":99}]`),
		}},
		{name: "core/patch-json-malformed", steps: []step{
			post(corePath(""), coreEvent("web-1.a")),
			patch(corePath("/web-1.a"), mediaJSONPatch, `{"op":"replace"}`),
			patch(corePath("/web-1.a"), mediaMergePatch, `{"count":`),
		}},
		{name: "core/patch-missing", steps: []step{
			patch(corePath("/nothing-here"), mediaMergePatch, `{"count":2}`),
		}},
		{name: "core/patch-unsupported-media-type", steps: []step{
			post(corePath(""), coreEvent("web-1.a")),
			patch(corePath("/web-1.a"), "text/plain", `{"count":2}`),
		}},
		{name: "core/patch-stale-resourceVersion", steps: []step{
			post(corePath(""), coreEvent("web-1.a")).saved("v1"),
			patch(corePath("/web-1.a"), mediaMergePatch, `{"count":2}`),
			patch(corePath("/web-1.a"), mediaMergePatch, `{"metadata":{"resourceVersion":"{{v1.rv}}"},"count":3}`),
		}},
		{name: "core/patch-invalid-result", steps: []step{
			post(corePath(""), coreEvent("web-1.a")),
			patch(corePath("/web-1.a"), mediaMergePatch, `{"involvedObject":{"kind":"Node"}}`),
		}},
		{name: "core/apply-create-and-update", steps: []step{
			patch(corePath("/web-1.apply"), mediaApplyPatch, coreEvent("web-1.apply"), "fieldManager", "tester"),
			patch(corePath("/web-1.apply"), mediaApplyPatch, coreEvent("web-1.apply", set("count", 2)), "fieldManager", "tester"),
			get(corePath("/web-1.apply")),
		}},
		{name: "core/apply-yaml", steps: []step{
			patch(corePath("/web-1.apply"), mediaApplyPatch, `apiVersion: v1
kind: Event
metadata:
  name: web-1.apply
involvedObject:
  kind: Pod
  name: web-1
  namespace: {{ns}}
reason: Started
message: Started container
type: Normal
`, "fieldManager", "tester"),
		}},
		{name: "core/apply-without-field-manager", steps: []step{
			patch(corePath("/web-1.apply"), mediaApplyPatch, coreEvent("web-1.apply")),
		}},
		{name: "core/apply-conflict", steps: []step{
			patch(corePath("/web-1.apply"), mediaApplyPatch, coreEvent("web-1.apply"), "fieldManager", "one"),
			patch(corePath("/web-1.apply"), mediaApplyPatch, coreEvent("web-1.apply", set("message", "mine")), "fieldManager", "two"),
			patch(corePath("/web-1.apply"), mediaApplyPatch, coreEvent("web-1.apply", set("message", "mine")), "fieldManager", "two", "force", "true"),
			get(corePath("/web-1.apply")),
		}},
		{name: "core/apply-dry-run", steps: []step{
			patch(corePath("/web-1.apply"), mediaApplyPatch, coreEvent("web-1.apply"), "fieldManager", "tester", "dryRun", "All"),
			get(corePath("/web-1.apply")),
		}},
	}
}

func deleteCases() []tcase {
	return []tcase{
		{name: "core/delete", steps: []step{
			post(corePath(""), coreEvent("web-1.a")),
			del(corePath("/web-1.a")),
			get(corePath("/web-1.a")),
			list(corePath("")),
		}},
		{name: "core/delete-missing", steps: []step{
			del(corePath("/nothing-here")),
		}},
		{name: "core/delete-precondition-uid", steps: []step{
			post(corePath(""), coreEvent("web-1.a")),
			del(corePath("/web-1.a")).as(mediaJSON).withBody(deleteOptions(`,"preconditions":{"uid":"00000000-0000-0000-0000-000000000000"}`)),
			del(corePath("/web-1.a")).as(mediaJSON).withBody(deleteOptions(`,"preconditions":{"uid":"{{uid}}"}`)),
		}},
		{name: "core/delete-precondition-resourceVersion", steps: []step{
			post(corePath(""), coreEvent("web-1.a")).saved("v1"),
			put(corePath("/web-1.a"), coreEvent("web-1.a", set("count", 2))),
			del(corePath("/web-1.a")).as(mediaJSON).withBody(deleteOptions(`,"preconditions":{"resourceVersion":"{{v1.rv}}"}`)),
			get(corePath("/web-1.a")),
		}},
		{name: "core/delete-dry-run", steps: []step{
			post(corePath(""), coreEvent("web-1.a")),
			del(corePath("/web-1.a"), "dryRun", "All"),
			get(corePath("/web-1.a")),
		}},
		{name: "core/delete-propagation-policy", steps: []step{
			post(corePath(""), coreEvent("web-1.a")),
			del(corePath("/web-1.a"), "propagationPolicy", "Foreground"),
			get(corePath("/web-1.a")),
		}},
		{name: "core/delete-invalid-options", steps: []step{
			post(corePath(""), coreEvent("web-1.a")),
			del(corePath("/web-1.a"), "propagationPolicy", "Sometimes"),
			del(corePath("/web-1.a")).as(mediaJSON).withBody(deleteOptions(`,"orphanDependents":true,"propagationPolicy":"Orphan"`)),
			del(corePath("/web-1.a"), "dryRun", "Maybe"),
			del(corePath("/web-1.a"), "gracePeriodSeconds", "-5"),
		}},
		{name: "core/delete-malformed-options", steps: []step{
			post(corePath(""), coreEvent("web-1.a")),
			del(corePath("/web-1.a")).as(mediaJSON).withBody(`{"preconditions":`),
		}},
		{name: "core/deletecollection-label-selector", steps: []step{
			post(corePath(""), coreEvent("web-1.a", labels("app", "web"))),
			post(corePath(""), coreEvent("web-1.b", labels("app", "web"))),
			post(corePath(""), coreEvent("db-0.a", labels("app", "db"))),
			list(corePath("")),
			del(corePath(""), "labelSelector", "app=web"),
			list(corePath("")),
		}},
		{name: "core/deletecollection-field-selector", steps: []step{
			post(corePath(""), coreEvent("web-1.a")),
			post(corePath(""), coreEvent("web-1.b", set("type", "Warning"), set("reason", "BackOff"))),
			list(corePath("")),
			del(corePath(""), "fieldSelector", "type=Warning"),
			list(corePath("")),
		}},
		{name: "core/deletecollection-dry-run", steps: []step{
			post(corePath(""), coreEvent("web-1.a")),
			list(corePath("")),
			del(corePath(""), "dryRun", "All"),
			list(corePath("")),
		}},
	}
}

// fieldCases builds the selector cases of one group: for each label, two
// events that differ in it and the three operators.
func fieldCases(prefix string, collection func(string) string, newEvent func(string, ...mod) string, fields []fieldCase) []tcase {
	var out []tcase
	for _, f := range fields {
		a := newEvent("event-a", f.a...)
		b := newEvent("event-b", f.b...)
		out = append(out, tcase{name: prefix + "/field-selector-" + f.label, steps: []step{
			post(collection(""), a),
			post(collection(""), b),
			list(collection(""), "fieldSelector", f.label+"="+f.value),
			list(collection(""), "fieldSelector", f.label+"=="+f.value),
			list(collection(""), "fieldSelector", f.label+"!="+f.value),
		}})
	}
	return out
}

type fieldCase struct {
	label, value string
	a, b         []mod
}

func coreFieldSelectorCases() []tcase {
	cs := fieldCases("core", corePath, coreEvent, []fieldCase{
		{label: "metadata.name", value: "event-a"},
		{label: "metadata.namespace", value: "{{ns}}"},
		{label: "involvedObject.kind", value: "Node", a: []mod{set("involvedObject.kind", "Node")}},
		{label: "involvedObject.namespace", value: "{{ns}}",
			b: append([]mod{set("involvedObject.namespace", "elsewhere")}, newStyleCore...)},
		{label: "involvedObject.name", value: "web-1", b: []mod{set("involvedObject.name", "web-2")}},
		{label: "involvedObject.uid", value: "pod-uid-1", b: []mod{set("involvedObject.uid", "pod-uid-2")}},
		{label: "involvedObject.apiVersion", value: "v1", b: []mod{set("involvedObject.apiVersion", "apps/v1")}},
		{label: "involvedObject.resourceVersion", value: "42", b: []mod{unset("involvedObject.resourceVersion")}},
		{label: "involvedObject.fieldPath", value: "spec.containers{web}", b: []mod{unset("involvedObject.fieldPath")}},
		{label: "reason", value: "Pulling", b: []mod{set("reason", "Pulled")}},
		{label: "reportingComponent", value: "example.com/ctrl", a: newStyleCore},
		{label: "source", value: "kubelet", b: []mod{set("source.component", "kube-scheduler")}},
		{label: "type", value: "Warning", a: []mod{set("type", "Warning")}},
	})
	return append(cs,
		// source selects reportingController when there is no source.
		tcase{name: "core/field-selector-source-fallback", steps: []step{
			post(corePath(""), coreEvent("event-a", append([]mod{unset("source")}, newStyleCore...)...)),
			post(corePath(""), coreEvent("event-b")),
			list(corePath(""), "fieldSelector", "source=example.com/ctrl"),
			list(corePath(""), "fieldSelector", "source!=kubelet"),
		}},
		tcase{name: "core/field-selector-several", steps: []step{
			post(corePath(""), coreEvent("event-a", set("type", "Warning"))),
			post(corePath(""), coreEvent("event-b", set("type", "Warning"), set("involvedObject.kind", "Node"))),
			post(corePath(""), coreEvent("event-c")),
			list(corePath(""), "fieldSelector", "involvedObject.kind=Pod,type=Warning"),
			list(corePath(""), "fieldSelector", "involvedObject.kind!=Pod,type==Warning"),
			list(corePath(""), "fieldSelector", "type=Warning,type=Normal"),
		}},
		tcase{name: "core/field-selector-empty-value", steps: []step{
			post(corePath(""), coreEvent("event-a", unset("involvedObject.fieldPath"))),
			post(corePath(""), coreEvent("event-b")),
			list(corePath(""), "fieldSelector", "involvedObject.fieldPath="),
			list(corePath(""), "fieldSelector", "involvedObject.fieldPath!="),
		}},
		tcase{name: "core/field-selector-unknown", steps: []step{
			get(corePath(""), "fieldSelector", "spec.nodeName=node-1"),
			get(corePath(""), "fieldSelector", "regarding.kind=Pod"),
			get(corePath(""), "fieldSelector", "reportingController=x"),
			get(coreAll, "fieldSelector", "involvedObject.Kind=Pod"),
		}},
		tcase{name: "core/field-selector-malformed", steps: []step{
			get(corePath(""), "fieldSelector", "reason"),
			get(corePath(""), "fieldSelector", "reason=a=b"),
			get(corePath(""), "fieldSelector", "reason in (a,b)"),
		}},
	)
}

func eventsFieldSelectorCases() []tcase {
	cs := fieldCases("events", evPath, evEvent, []fieldCase{
		{label: "metadata.name", value: "event-a"},
		{label: "metadata.namespace", value: "{{ns}}"},
		{label: "regarding.kind", value: "Deployment", b: []mod{set("regarding.kind", "ReplicaSet")}},
		{label: "regarding.namespace", value: "{{ns}}", b: []mod{set("regarding.namespace", "elsewhere")}},
		{label: "regarding.name", value: "web", b: []mod{set("regarding.name", "db")}},
		{label: "regarding.uid", value: "deploy-uid-1", b: []mod{set("regarding.uid", "deploy-uid-2")}},
		{label: "regarding.apiVersion", value: "apps/v1", b: []mod{set("regarding.apiVersion", "v1")}},
		{label: "regarding.resourceVersion", value: "7", b: []mod{unset("regarding.resourceVersion")}},
		{label: "regarding.fieldPath", value: "spec.replicas", b: []mod{unset("regarding.fieldPath")}},
		{label: "reason", value: "ScalingReplicaSet", b: []mod{set("reason", "Killing")}},
		{label: "reportingController", value: "example.com/web-controller", b: []mod{set("reportingController", "example.com/other")}},
		{label: "type", value: "Warning", a: []mod{set("type", "Warning")}},
	})
	return append(cs,
		tcase{name: "events/field-selector-unknown", steps: []step{
			get(evPath(""), "fieldSelector", "involvedObject.kind=Pod"),
			get(evPath(""), "fieldSelector", "source=kubelet"),
			get(evPath(""), "fieldSelector", "reportingComponent=x"),
			get(evAll, "fieldSelector", "note=x"),
		}},
	)
}

func labelSelectorCases() []tcase {
	seed := []step{
		post(corePath(""), coreEvent("event-a", labels("app", "web", "tier", "front"))),
		post(corePath(""), coreEvent("event-b", labels("app", "db"))),
		post(corePath(""), coreEvent("event-c")),
	}
	withSeed := func(steps ...step) []step { return append(append([]step(nil), seed...), steps...) }
	return []tcase{
		{name: "core/label-selector-equality", steps: withSeed(
			list(corePath(""), "labelSelector", "app=web"),
			list(corePath(""), "labelSelector", "app==db"),
		)},
		{name: "core/label-selector-inequality", steps: withSeed(
			list(corePath(""), "labelSelector", "app!=web"),
		)},
		{name: "core/label-selector-set", steps: withSeed(
			list(corePath(""), "labelSelector", "app in (web,db)"),
			list(corePath(""), "labelSelector", "app notin (web)"),
		)},
		{name: "core/label-selector-exists", steps: withSeed(
			list(corePath(""), "labelSelector", "tier"),
			list(corePath(""), "labelSelector", "!tier"),
			list(corePath(""), "labelSelector", "app,tier=front"),
		)},
		{name: "core/label-and-field-selector", steps: withSeed(
			list(corePath(""), "labelSelector", "app", "fieldSelector", "metadata.name!=event-a"),
		)},
		{name: "core/label-selector-malformed", steps: []step{
			get(corePath(""), "labelSelector", "app in (web"),
			get(corePath(""), "labelSelector", "app=a b"),
			get(corePath(""), "labelSelector", "-bad=x"),
		}},
		{name: "events/label-selector", steps: []step{
			post(evPath(""), evEvent("event-a", labels("app", "web"))),
			post(evPath(""), evEvent("event-b", labels("app", "db"))),
			list(evPath(""), "labelSelector", "app in (db)"),
			list(evPath(""), "labelSelector", "app,app!=db"),
		}},
	}
}

func listCases() []tcase {
	five := []step{
		post(corePath(""), coreEvent("event-1")),
		post(corePath(""), coreEvent("event-2")),
		post(corePath(""), coreEvent("event-3")),
		post(corePath(""), coreEvent("event-4")),
		post(corePath(""), coreEvent("event-5")),
		list(corePath("")),
	}
	withFive := func(steps ...step) []step { return append(append([]step(nil), five...), steps...) }
	return []tcase{
		{name: "core/list-empty", steps: []step{
			list(corePath("")),
			list(corePath("")).accepting(mediaYAML),
		}},
		{name: "core/list-all-namespaces", steps: []step{
			post(corePath(""), coreEvent("event-a")),
			list(coreAll, "fieldSelector", "metadata.namespace={{ns}}"),
		}},
		// Pages of a filtered list: kube-apiserver reports no
		// remainingItemCount when a selector is given.
		{name: "core/list-pages", steps: withFive(
			get(corePath(""), "limit", "2", "labelSelector", "!absent"),
			get(corePath(""), "limit", "2", "labelSelector", "!absent", "continue", "{{continue}}"),
			get(corePath(""), "limit", "2", "labelSelector", "!absent", "continue", "{{continue}}"),
		)},
		// Unfiltered: pages say how many items remain.
		{name: "core/list-pages-unfiltered", steps: withFive(
			get(corePath(""), "limit", "2"),
			get(corePath(""), "limit", "2", "continue", "{{continue}}"),
			get(corePath(""), "limit", "2", "continue", "{{continue}}"),
		)},
		{name: "core/list-limit-with-resourceVersion", steps: withFive(
			get(corePath(""), "limit", "2", "resourceVersion", "0"),
			get(corePath(""), "limit", "3", "resourceVersion", "{{rv}}", "resourceVersionMatch", "NotOlderThan"),
			get(corePath(""), "limit", "3", "resourceVersion", "{{rv}}", "resourceVersionMatch", "Exact"),
			get(corePath(""), "limit", "3", "resourceVersion", "{{rv}}"),
		)},
		{name: "core/list-pages-with-selector", steps: withFive(
			get(corePath(""), "limit", "2", "fieldSelector", "metadata.name!=event-2"),
			get(corePath(""), "limit", "2", "fieldSelector", "metadata.name!=event-2", "continue", "{{continue}}"),
		)},
		{name: "core/list-limit-larger-than-list", steps: withFive(
			get(corePath(""), "limit", "10"),
		)},
		{name: "core/list-bad-continue", steps: []step{
			get(corePath(""), "continue", "not-a-token"),
			get(corePath(""), "continue", "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MCwic3RhcnQiOiJ4In0"),
			get(corePath(""), "limit", "1", "continue", "eyJ2IjoibWV0YS5rOHMuaW8vdjIiLCJydiI6NSwic3RhcnQiOiJ4In0"),
		}},
		{name: "core/list-continue-with-resourceVersion", steps: withFive(
			get(corePath(""), "limit", "2", "fieldSelector", "type=Normal"),
			get(corePath(""), "limit", "2", "fieldSelector", "type=Normal", "continue", "{{continue}}", "resourceVersion", "0"),
			get(corePath(""), "limit", "2", "fieldSelector", "type=Normal", "continue", "{{continue}}", "resourceVersion", "{{rv}}"),
		)},
		{name: "core/list-resourceVersion-not-a-number", steps: []step{
			get(corePath(""), "resourceVersion", "abc"),
			get(corePath(""), "resourceVersion", "-1"),
			get(corePath(""), "resourceVersion", "abc", "resourceVersionMatch", "Exact"),
		}},
		{name: "core/list-resourceVersion-0", steps: withFive(
			list(corePath(""), "resourceVersion", "0"),
			list(corePath(""), "resourceVersion", "0", "resourceVersionMatch", "NotOlderThan"),
		)},
		{name: "core/list-resourceVersionMatch-combinations", steps: []step{
			get(corePath(""), "resourceVersionMatch", "NotOlderThan"),
			get(corePath(""), "resourceVersionMatch", "Exact"),
			get(corePath(""), "resourceVersion", "0", "resourceVersionMatch", "Exact"),
			get(corePath(""), "resourceVersion", "1", "resourceVersionMatch", "Sometime"),
			get(corePath(""), "resourceVersion", "1", "resourceVersionMatch", "Exact", "continue", "abc"),
		}},
		{name: "core/list-resourceVersion-of-a-write", steps: []step{
			post(corePath(""), coreEvent("event-1")).saved("w"),
			post(corePath(""), coreEvent("event-2")),
			list(corePath(""), "resourceVersion", "{{w.rv}}", "resourceVersionMatch", "NotOlderThan"),
			list(corePath(""), "resourceVersion", "{{w.rv}}", "resourceVersionMatch", "Exact"),
		}},
		{name: "core/list-resourceVersion-too-large", steps: []step{
			get(corePath(""), "resourceVersion", "999999999", "resourceVersionMatch", "NotOlderThan"),
		}},
		{name: "core/watch-resourceVersion-too-large", steps: []step{
			watch(corePath(""), 1, "resourceVersion", "999999999"),
		}},
		{name: "events/list-pages", steps: []step{
			post(evPath(""), evEvent("event-1")),
			post(evPath(""), evEvent("event-2")),
			post(evPath(""), evEvent("event-3")),
			list(evPath("")),
			get(evPath(""), "limit", "2", "fieldSelector", "type=Normal"),
			get(evPath(""), "limit", "2", "fieldSelector", "type=Normal", "continue", "{{continue}}"),
		}},
		{name: "events/list-all-namespaces", steps: []step{
			post(evPath(""), evEvent("event-a")),
			list(evAll, "fieldSelector", "metadata.namespace={{ns}}"),
			list(evAll, "fieldSelector", "metadata.namespace={{ns}}").accepting(mediaProtobuf),
		}},
	}
}

// consistentReadCases write and read back at once, with no pause and no
// retry: a read without a resourceVersion reflects every write acknowledged
// before it (invariant 4, docs/architecture.md#4-consistent-reads). Every list step in the suite is played
// that way; these cases add the writes and reads the others do not cover.
func consistentReadCases() []tcase {
	return []tcase{
		{name: "consistent/create-list-table", steps: []step{
			post(corePath(""), coreEvent("event-a", set("type", "Warning"))),
			post(corePath(""), coreEvent("event-b")),
			list(corePath("")).accepting(mediaTable),
			list(coreAll, "fieldSelector", "metadata.namespace={{ns}},type=Warning").accepting(mediaTable),
			list(evPath(""), "fieldSelector", "regarding.name=web-1").accepting(mediaTable),
		}},
		{name: "consistent/create-list-selectors", steps: []step{
			post(corePath(""), coreEvent("event-a", set("reason", "BackOff"), set("type", "Warning"), labels("app", "web"))),
			post(corePath(""), coreEvent("event-b", set("reason", "BackOff"))),
			post(corePath(""), coreEvent("event-c")),
			list(corePath(""), "fieldSelector", "reason=BackOff"),
			list(corePath(""), "fieldSelector", "involvedObject.name=web-1,type=Warning"),
			list(corePath(""), "fieldSelector", "reason!=BackOff"),
			list(corePath(""), "labelSelector", "app=web"),
			list(evPath(""), "fieldSelector", "regarding.name=web-1"),
			list(coreAll, "fieldSelector", "metadata.namespace={{ns}}"),
		}},
		{name: "consistent/patch-list", steps: []step{
			post(corePath(""), coreEvent("event-a")),
			post(corePath(""), coreEvent("event-b")),
			list(corePath(""), "fieldSelector", "type=Warning"),
			patch(corePath("/event-a"), mediaMergePatch, `{"type":"Warning","count":3}`),
			list(corePath(""), "fieldSelector", "type=Warning"),
			list(corePath("")),
			patch(corePath("/event-a"), mediaMergePatch, `{"metadata":{"labels":{"app":"web"}}}`),
			list(corePath(""), "labelSelector", "app=web"),
			list(evPath("")),
		}},
		{name: "consistent/delete-list", steps: []step{
			post(corePath(""), coreEvent("event-a")),
			post(corePath(""), coreEvent("event-b")),
			list(corePath("")),
			del(corePath("/event-a")),
			list(corePath("")),
			post(corePath(""), coreEvent("event-a", set("reason", "Again"))),
			list(corePath("")),
		}},
		{name: "consistent/deletecollection-list", steps: []step{
			post(corePath(""), coreEvent("event-a", labels("app", "web"))),
			post(corePath(""), coreEvent("event-b", labels("app", "web"))),
			post(corePath(""), coreEvent("event-c")),
			del(corePath(""), "labelSelector", "app=web"),
			list(corePath("")),
			list(evPath("")),
		}},
		{name: "consistent/watch-list-initial", steps: []step{
			post(corePath(""), coreEvent("event-a")),
			post(evPath(""), evEvent("event-b")),
			watch(corePath(""), 3, "sendInitialEvents", "true", "allowWatchBookmarks", "true", "resourceVersionMatch", "NotOlderThan"),
			patch(corePath("/event-a"), mediaMergePatch, `{"count":4}`),
			watch(evPath(""), 3, "sendInitialEvents", "true", "allowWatchBookmarks", "true", "resourceVersionMatch", "NotOlderThan"),
			watch(corePath(""), 2),
		}},
		// Pages keep the snapshot of the first one while writes go on: an
		// event created (before or after the cursor) or deleted between
		// pages changes nothing in the later ones.
		{name: "consistent/pages-while-writing", steps: []step{
			post(corePath(""), coreEvent("event-2")),
			post(corePath(""), coreEvent("event-3")),
			post(corePath(""), coreEvent("event-4")),
			post(corePath(""), coreEvent("event-5")),
			post(corePath(""), coreEvent("event-6")),
			get(corePath(""), "limit", "2"),
			post(corePath(""), coreEvent("event-1")),
			post(corePath(""), coreEvent("event-7")),
			get(corePath(""), "limit", "2", "continue", "{{continue}}"),
			del(corePath("/event-6")),
			patch(corePath("/event-5"), mediaMergePatch, `{"type":"Warning"}`),
			get(corePath(""), "limit", "2", "continue", "{{continue}}"),
			list(corePath("")),
		}},
	}
}

func watchCases() []tcase {
	history := []step{
		post(corePath(""), coreEvent("event-a")).saved("c"),
		put(corePath("/event-a"), coreEvent("event-a", set("count", 2))),
		post(corePath(""), coreEvent("event-b", set("type", "Warning"))),
		del(corePath("/event-a")),
	}
	withHistory := func(steps ...step) []step { return append(append([]step(nil), history...), steps...) }
	return []tcase{
		{name: "core/watch-from-resourceVersion", steps: withHistory(
			watch(corePath(""), 3, "resourceVersion", "{{c.rv}}"),
		)},
		{name: "core/watch-with-field-selector", steps: withHistory(
			watch(corePath(""), 1, "resourceVersion", "{{c.rv}}", "fieldSelector", "type=Warning"),
			watch(corePath(""), 2, "resourceVersion", "{{c.rv}}", "fieldSelector", "metadata.name=event-a"),
		)},
		{name: "core/watch-initial-events", steps: []step{
			post(corePath(""), coreEvent("event-a")),
			post(corePath(""), coreEvent("event-b")),
			watch(corePath(""), 2),
			watch(corePath(""), 2, "resourceVersion", "0"),
		}},
		{name: "core/watch-list", steps: []step{
			post(corePath(""), coreEvent("event-a")),
			post(corePath(""), coreEvent("event-b")),
			watch(corePath(""), 3, "sendInitialEvents", "true", "allowWatchBookmarks", "true", "resourceVersionMatch", "NotOlderThan"),
		}},
		{name: "core/watch-protobuf", steps: withHistory(
			watch(corePath(""), 3, "resourceVersion", "{{c.rv}}").accepting(mediaProtobuf),
			watch(evPath(""), 3, "resourceVersion", "{{c.rv}}").accepting(mediaProtobuf),
		)},
		// kubectl get -w: a Table first, then one Table per watch event.
		{name: "core/watch-table", steps: withHistory(
			watch(corePath(""), 3, "resourceVersion", "{{c.rv}}").accepting(mediaTable),
			watch(evPath(""), 3, "resourceVersion", "{{c.rv}}", "includeObject", "Object").accepting(mediaTable),
			watch(corePath(""), 1).accepting(mediaTable),
		)},
		{name: "core/watch-timeout", steps: []step{
			post(corePath(""), coreEvent("event-a")).saved("c"),
			watch(corePath(""), 1, "resourceVersion", "{{c.rv}}", "timeoutSeconds", "1"),
		}},
		{name: "core/watch-list-bad-parameters", steps: []step{
			get(corePath(""), "watch", "true", "sendInitialEvents", "true"),
			get(corePath(""), "watch", "true", "sendInitialEvents", "true", "allowWatchBookmarks", "true"),
			get(corePath(""), "sendInitialEvents", "true", "resourceVersionMatch", "NotOlderThan", "allowWatchBookmarks", "true"),
		}},
		{name: "core/watch-resourceVersion-not-a-number", knownDiff: "kube-apiserver answers a watch with a non-numeric " +
			"resourceVersion with 500 InternalError (from its watch cache); eventpipe answers 400 BadRequest with the text kube gives " +
			"the same mistake on a list (invariant 7 in docs/architecture.md: never a 5xx for bad input)", steps: []step{
			get(corePath(""), "watch", "true", "resourceVersion", "abc"),
		}},
		// Updates that move an event into or out of a watch's selection:
		// ADDED, and DELETED with the state before the update.
		{name: "core/watch-selector-transitions", steps: []step{
			post(corePath(""), coreEvent("event-a", labels("app", "web"))).saved("c"),
			post(corePath(""), coreEvent("event-b")),
			patch(corePath("/event-a"), mediaMergePatch, `{"metadata":{"labels":{"app":null}}}`),
			patch(corePath("/event-b"), mediaMergePatch, `{"type":"Warning"}`),
			patch(corePath("/event-a"), mediaMergePatch, `{"metadata":{"labels":{"app":"web"}},"count":5}`),
			patch(corePath("/event-b"), mediaMergePatch, `{"count":7}`),
			patch(corePath("/event-b"), mediaMergePatch, `{"type":"Normal","count":8}`),
			watch(corePath(""), 2, "resourceVersion", "{{c.rv}}", "labelSelector", "app=web"),
			watch(corePath(""), 3, "resourceVersion", "{{c.rv}}", "fieldSelector", "type=Warning"),
			watch(evPath(""), 3, "resourceVersion", "{{c.rv}}", "fieldSelector", "type=Warning"),
		}},
		{name: "core/watch-single-event-by-name", steps: withHistory(
			watch(corePath(""), 2, "resourceVersion", "{{c.rv}}", "fieldSelector", "metadata.name=event-a"),
		)},
		{name: "events/watch-from-resourceVersion", steps: []step{
			post(evPath(""), evEvent("event-a")).saved("c"),
			patch(evPath("/event-a"), mediaMergePatch, `{"series":{"count":2,"lastObservedTime":"`+tsMicro+`"}}`),
			del(evPath("/event-a")),
			watch(evPath(""), 2, "resourceVersion", "{{c.rv}}"),
		}},
	}
}

// bigBody is a create whose body is over kube-apiserver's request size
// limit (3 MiB, k8s.io/apiserver's default MaxRequestBodyBytes).
func bigBody() string {
	return coreEvent("web-1.big", set("message", strings.Repeat("x", 3<<20)))
}

func badInputCases() []tcase {
	return []tcase{
		{name: "core/create-malformed-json", steps: []step{
			post(corePath(""), `{"apiVersion":"v1","kind":"Event","metadata":{"name":"x"`),
			post(corePath(""), `not json at all`),
			post(corePath(""), `{"apiVersion":"v1","kind":"Event","metadata":{"name":"x"},"count":"many"}`),
		}},
		{name: "core/create-malformed-yaml", steps: []step{
			post(corePath(""), "apiVersion: v1\nkind: Event\nmetadata:\n  name: [x\n").as(mediaYAML),
			post(corePath(""), "apiVersion: v1\nkind: Event\nmetadata:\n\tname: x\n").as(mediaYAML),
		}},
		{name: "core/create-empty-body", steps: []step{
			post(corePath(""), "").as(mediaJSON),
			post(corePath(""), "{}"),
		}},
		{name: "core/create-wrong-kind", steps: []step{
			post(corePath(""), coreEvent("web-1.a", set("kind", "Pod"))),
			post(corePath(""), coreEvent("web-1.a", set("kind", "EventList"))),
		}},
		{name: "core/create-wrong-apiVersion", steps: []step{
			post(corePath(""), coreEvent("web-1.a", set("apiVersion", "events.k8s.io/v1"))),
			post(corePath(""), coreEvent("web-1.a", set("apiVersion", "v2"))),
		}},
		{name: "core/create-no-kind", steps: []step{
			post(corePath(""), coreEvent("web-1.a", unset("kind"), unset("apiVersion"))),
		}},
		{name: "core/create-name-too-long", steps: []step{
			post(corePath(""), coreEvent(strings.Repeat("a", 254))),
			post(corePath(""), coreEvent(strings.Repeat("a", 64))),
			post(corePath(""), coreEvent(strings.Repeat("b", 2000))),
		}},
		{name: "core/create-name-invalid", steps: []step{
			post(corePath(""), coreEvent("Web_1.A")),
			post(corePath(""), coreEvent("web/1")),
			post(corePath(""), coreEvent("..")),
			post(corePath(""), coreEvent("")),
		}},
		{name: "core/create-namespace-mismatch", steps: []step{
			post(corePath(""), coreEvent("web-1.a", set("metadata.namespace", "other"))),
			post(corePath(""), coreEvent("web-1.b", unset("metadata.namespace"))),
		}},
		{name: "core/create-involvedObject-namespace-mismatch", steps: []step{
			post(corePath(""), coreEvent("web-1.a", set("involvedObject.namespace", "other"))),
			post(corePath(""), coreEvent("web-1.b", unset("involvedObject.namespace"))),
		}},
		{name: "core/create-invalid-fields", steps: []step{
			post(corePath(""), coreEvent("web-1.a", set("type", "Bad"), set("count", -1))),
			post(corePath(""), coreEvent("web-1.b", append([]mod{set("action", strings.Repeat("a", 129))}, newStyleCore...)...)),
			post(corePath(""), coreEvent("web-1.c", labels("bad key!", "v"))),
		}},
		{name: "core/create-unknown-field", steps: []step{
			post(corePath(""), coreEvent("web-1.a", set("colour", "blue"))),
			post(corePath(""), coreEvent("web-1.b", set("colour", "blue")), "fieldValidation", "Strict"),
			post(corePath(""), coreEvent("web-1.c", set("colour", "blue")), "fieldValidation", "Ignore"),
			post(corePath(""), coreEvent("web-1.d"), "fieldValidation", "Sometimes"),
		}},
		{name: "core/create-duplicate-field", steps: []step{
			post(corePath(""), `{"apiVersion":"v1","kind":"Event","metadata":{"name":"web-1.a"},"reason":"A","reason":"B","involvedObject":{"namespace":"{{ns}}"}}`, "fieldValidation", "Strict"),
		}},
		{name: "core/create-body-too-large", steps: []step{
			post(corePath(""), bigBody()),
			get(corePath("/web-1.big")),
		}},
		{name: "core/create-unsupported-media-type", steps: []step{
			post(corePath(""), coreEvent("web-1.a")).as("text/plain"),
		}},
		{name: "core/get-not-acceptable", steps: []step{
			get(corePath("/x")).accepting("text/html"),
		}},
		{name: "core/method-not-allowed", steps: []step{
			post(corePath("/web-1.a"), coreEvent("web-1.a")),
			put(corePath(""), coreEvent("web-1.a")),
		}},
		{name: "core/invalid-namespace-in-path", steps: []step{
			get("/api/v1/namespaces/Not_A_Namespace/events"),
			post("/api/v1/namespaces/Not_A_Namespace/events", coreEvent("web-1.a", set("metadata.namespace", "Not_A_Namespace"),
				set("involvedObject.namespace", "Not_A_Namespace"))),
			put("/api/v1/namespaces/Not_A_Namespace/events/web-1.a", coreEvent("web-1.a", set("metadata.namespace", "Not_A_Namespace"),
				set("involvedObject.namespace", "Not_A_Namespace"))),
			patch("/apis/events.k8s.io/v1/namespaces/Not_A_Namespace/events/web.a", mediaApplyPatch,
				evEvent("web.a", set("metadata.namespace", "Not_A_Namespace"), set("regarding.namespace", "Not_A_Namespace")), "fieldManager", "tester"),
			del("/api/v1/namespaces/Not_A_Namespace/events/web-1.a"),
		}},
	}
}

func eventsCases() []tcase {
	return []tcase{
		{name: "events/create-get", steps: []step{
			post(evPath(""), evEvent("web.a")),
			get(evPath("/web.a")),
			get(evPath("/web.a")).accepting(mediaYAML),
			get(evPath("/web.a")).accepting(mediaProtobuf),
		}},
		{name: "events/create-with-series-and-related", steps: []step{
			post(evPath(""), evEvent("web.a", set("series", obj{"count": 3, "lastObservedTime": tsMicro}),
				set("related", obj{"kind": "Pod", "namespace": "{{ns}}", "name": "web-1-abc"}))),
			get(evPath("/web.a")),
			get(corePath("/web.a")),
		}},
		{name: "events/create-missing-required", steps: []step{
			post(evPath(""), `{"apiVersion":"events.k8s.io/v1","kind":"Event","metadata":{"name":"web.a"}}`),
			post(evPath(""), evEvent("web.b", unset("eventTime"))),
			post(evPath(""), evEvent("web.c", unset("reportingController"), unset("reportingInstance"), unset("action"), unset("reason"))),
		}},
		{name: "events/create-invalid-values", steps: []step{
			post(evPath(""), evEvent("web.a", set("note", strings.Repeat("n", 1025)))),
			post(evPath(""), evEvent("web.b", set("type", "Fine"), set("reportingController", "no-slash"))),
			post(evPath(""), evEvent("web.c", set("reason", strings.Repeat("r", 129)), set("action", strings.Repeat("a", 129)))),
			post(evPath(""), evEvent("web.d", set("series", obj{"count": 1}))),
		}},
		{name: "events/create-name-invalid", steps: []step{
			post(evPath(""), evEvent("Web_A")),
			post(evPath(""), evEvent(strings.Repeat("a", 254))),
		}},
		{name: "events/create-wrong-kind", steps: []step{
			post(evPath(""), evEvent("web.a", set("apiVersion", "v1"))),
			post(evPath(""), evEvent("web.a", set("kind", "Deployment"))),
		}},
		{name: "events/create-namespace-mismatch", steps: []step{
			post(evPath(""), evEvent("web.a", set("metadata.namespace", "other"))),
		}},
		{name: "events/create-generateName-dry-run", genPrefixes: []string{"web-"}, steps: []step{
			post(evPath(""), evEvent("", unset("metadata.name"), set("metadata.generateName", "web-")), "dryRun", "All"),
			list(evPath("")),
		}},
		{name: "events/create-generateName-invalid", genPrefixes: []string{"web."}, steps: []step{
			// events.k8s.io checks the prefix as a whole name: "web." is
			// refused although "web.abcde" would be a valid name.
			post(evPath(""), evEvent("", unset("metadata.name"), set("metadata.generateName", "web."))),
		}},
		{name: "events/delete-preconditions", steps: []step{
			post(evPath(""), evEvent("web.a")).saved("v1"),
			patch(evPath("/web.a"), mediaMergePatch, `{"metadata":{"labels":{"x":"1"}}}`),
			del(evPath("/web.a")).as(mediaJSON).withBody(deleteOptions(`,"preconditions":{"uid":"00000000-0000-0000-0000-000000000000"}`)),
			del(evPath("/web.a")).as(mediaJSON).withBody(deleteOptions(`,"preconditions":{"resourceVersion":"{{v1.rv}}"}`)),
			del(evPath("/web.a")).as(mediaJSON).withBody(deleteOptions(`,"preconditions":{"uid":"{{uid}}","resourceVersion":"{{rv}}"}`)),
		}},
		{name: "events/update", steps: []step{
			post(evPath(""), evEvent("web.a")),
			put(evPath("/web.a"), evEvent("web.a", set("series", obj{"count": 2, "lastObservedTime": tsMicro}))),
			get(evPath("/web.a")),
		}},
		{name: "events/update-immutable-fields", steps: []step{
			post(evPath(""), evEvent("web.a")),
			put(evPath("/web.a"), evEvent("web.a", set("reason", "Other"), set("note", "changed"), set("regarding.name", "db"))),
		}},
		{name: "events/update-precondition-conflict", steps: []step{
			post(evPath(""), evEvent("web.a")).saved("v1"),
			patch(evPath("/web.a"), mediaMergePatch, `{"metadata":{"labels":{"x":"1"}}}`),
			put(evPath("/web.a"), evEvent("web.a", set("metadata.resourceVersion", "{{v1.rv}}"))),
		}},
		{name: "events/patch-strategic-and-json", steps: []step{
			post(evPath(""), evEvent("web.a")),
			patch(evPath("/web.a"), mediaStrategicPatch, `{"series":{"count":2,"lastObservedTime":"`+tsMicro+`"}}`),
			patch(evPath("/web.a"), mediaJSONPatch, `[{"op":"replace","path":"/series/count","value":3}]`),
		}},
		{name: "events/apply", steps: []step{
			patch(evPath("/web.apply"), mediaApplyPatch, evEvent("web.apply"), "fieldManager", "tester"),
			patch(evPath("/web.apply"), mediaApplyPatch, evEvent("web.apply", labels("a", "b")), "fieldManager", "tester"),
		}},
		{name: "events/delete", steps: []step{
			post(evPath(""), evEvent("web.a")),
			del(evPath("/web.a")),
			del(evPath("/web.a")),
		}},
		{name: "events/deletecollection", steps: []step{
			post(evPath(""), evEvent("web.a")),
			post(evPath(""), evEvent("web.b", set("regarding.kind", "ReplicaSet"))),
			list(evPath("")),
			del(evPath(""), "fieldSelector", "regarding.kind=ReplicaSet"),
			list(evPath("")),
		}},
		{name: "both/core-event-read-as-events", steps: []step{
			post(corePath(""), coreEvent("web-1.a")),
			get(evPath("/web-1.a")),
			list(evPath("")),
		}},
		{name: "both/events-event-updated-through-core", steps: []step{
			post(evPath(""), evEvent("web.a")),
			patch(corePath("/web.a"), mediaMergePatch, `{"count":5}`),
			get(evPath("/web.a")),
		}},
	}
}

func tableCases() []tcase {
	seed := []step{
		post(corePath(""), coreEvent("web-1.a")),
		post(corePath(""), coreEvent("web-1.b", set("type", "Warning"), set("reason", "BackOff"), set("count", 7),
			set("message", "  Back-off restarting failed container  "))),
		post(evPath(""), evEvent("web.c")),
		post(evPath(""), evEvent("web.d", set("series", obj{"count": 4, "lastObservedTime": tsMicro}))),
		post(corePath(""), coreEvent("node.e", set("involvedObject", obj{"kind": "Node", "namespace": "{{ns}}"}),
			unset("firstTimestamp"), unset("lastTimestamp"), unset("source"), set("count", 0))),
	}
	withSeed := func(steps ...step) []step { return append(append([]step(nil), seed...), steps...) }
	return []tcase{
		{name: "core/table-get", steps: withSeed(
			get(corePath("/web-1.b")).accepting(mediaTable),
			get(corePath("/web.d")).accepting(mediaTable),
		)},
		{name: "core/table-list", steps: withSeed(
			list(corePath("")).accepting(mediaTable),
		)},
		{name: "core/table-list-include-object", steps: withSeed(
			list(corePath(""), "includeObject", "Object").accepting(mediaTable),
			list(corePath(""), "includeObject", "None").accepting(mediaTable),
		)},
		{name: "core/table-list-all-namespaces", steps: withSeed(
			list(coreAll, "fieldSelector", "metadata.namespace={{ns}}").accepting(mediaTable),
		)},
		{name: "events/table-get", steps: withSeed(
			get(evPath("/web.c")).accepting(mediaTable),
			get(evPath("/web-1.b")).accepting(mediaTable),
		)},
		{name: "events/table-list", steps: withSeed(
			list(evPath("")).accepting(mediaTable),
			list(evPath(""), "limit", "2").accepting(mediaTable),
			list(evPath(""), "limit", "2", "labelSelector", "!absent").accepting(mediaTable),
			get(evPath(""), "limit", "2", "labelSelector", "!absent", "continue", "{{continue}}").accepting(mediaTable),
		)},
		{name: "core/table-errors", steps: []step{
			get(corePath("/missing")).accepting(mediaTable),
			get(corePath(""), "fieldSelector", "bogus=1").accepting(mediaTable),
		}},
	}
}

func discoveryCases() []tcase {
	return []tcase{
		{name: "events/discovery", steps: []step{
			get("/apis/events.k8s.io"),
			get("/apis/events.k8s.io/v1"),
			get("/apis/events.k8s.io/v1").accepting(mediaProtobuf),
		}},
		{name: "core/discovery-events-resource", steps: []step{
			// /api/v1 also lists every other core resource kube-apiserver
			// serves; eventpipe serves Events only (and lists a few types
			// events refer to), so only the events entry is compared.
			withPick(get("/api/v1"), pickNamed("resources", "events")),
			withPick(get("/api/v1").accepting(mediaProtobuf), pickNamed("resources", "events")),
			withPick(get("/api").accepting(mediaAggregatedDiscovery), pickAggregated("", "events")),
			withPick(get("/apis").accepting(mediaAggregatedDiscovery), pickAggregated("events.k8s.io", "events")),
		}},
		{name: "events/openapi-v3", steps: []step{
			get("/openapi/v3/apis/events.k8s.io/v1"),
		}},
	}
}

// mediaAggregatedDiscovery is what kubectl asks /api and /apis for.
const mediaAggregatedDiscovery = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"

func withPick(s step, pick func(any) any) step { s.pick = pick; return s }

// pickNamed keeps, of an APIResourceList body (JSON or protobuf), the
// entry of list whose name is name, and the list's own fields.
func pickNamed(list, name string) func(any) any {
	return func(body any) any {
		m, ok := body.(map[string]any)
		if !ok {
			return body
		}
		if p, ok := m["protobuf"].(map[string]any); ok {
			return map[string]any{"protobuf": pickNamed(list, name)(p)}
		}
		out := map[string]any{}
		for k, v := range m {
			out[k] = v
		}
		var kept []any
		items, _ := m[list].([]any)
		for _, it := range items {
			if im, ok := it.(map[string]any); ok && im["name"] == name {
				kept = append(kept, it)
			}
		}
		out[list] = kept
		return out
	}
}

// pickAggregated keeps, of an aggregated discovery document, the group
// named group and in it the resource named resource.
func pickAggregated(group, resource string) func(any) any {
	return func(body any) any {
		m, ok := body.(map[string]any)
		if !ok {
			return body
		}
		out := map[string]any{}
		for k, v := range m {
			out[k] = v
		}
		var groups []any
		items, _ := m["items"].([]any)
		for _, it := range items {
			g, ok := it.(map[string]any)
			if !ok {
				continue
			}
			md, _ := g["metadata"].(map[string]any)
			name, _ := md["name"].(string)
			if name != group {
				continue
			}
			gc := map[string]any{}
			for k, v := range g {
				gc[k] = v
			}
			var versions []any
			vs, _ := g["versions"].([]any)
			for _, v := range vs {
				vm, ok := v.(map[string]any)
				if !ok {
					continue
				}
				vc := map[string]any{}
				for k, x := range vm {
					vc[k] = x
				}
				vc["resources"] = pickNamedField(vm["resources"], "resource", resource)
				versions = append(versions, vc)
			}
			gc["versions"] = versions
			groups = append(groups, gc)
		}
		out["items"] = groups
		return out
	}
}

func pickNamedField(list any, field, name string) []any {
	var kept []any
	items, _ := list.([]any)
	for _, it := range items {
		if im, ok := it.(map[string]any); ok && im[field] == name {
			kept = append(kept, it)
		}
	}
	return kept
}

// moreCases probe corners: metadata validation, unusual parameters and
// deprecated fields.
func moreCases() []tcase {
	return []tcase{
		{name: "core/create-invalid-metadata", steps: []step{
			post(corePath(""), coreEvent("web-1.a", set("metadata.finalizers", []any{"no-domain"}))),
			post(corePath(""), coreEvent("web-1.b", set("metadata.ownerReferences", []any{obj{"apiVersion": "v1", "kind": "Pod", "name": "", "uid": ""}}))),
			post(corePath(""), coreEvent("web-1.c", set("metadata.annotations", obj{"big": strings.Repeat("a", 256*1024)}))),
			post(corePath(""), coreEvent("web-1.d", set("metadata.generation", -1))),
		}},
		{name: "events/create-invalid-metadata", steps: []step{
			post(evPath(""), evEvent("web.a", set("metadata.finalizers", []any{"no-domain"}))),
			post(evPath(""), evEvent("web.b", labels("a", strings.Repeat("v", 64)))),
		}},
		{name: "events/create-with-deprecated-fields", steps: []step{
			post(evPath(""), evEvent("web.a", set("deprecatedCount", 3), set("deprecatedSource", obj{"component": "kubelet"}),
				set("deprecatedFirstTimestamp", tsFirst), set("deprecatedLastTimestamp", tsLast))),
			get(corePath("/web.a")),
		}},
		{name: "core/create-new-style-with-series", steps: []step{
			post(corePath(""), coreEvent("web-1.a", append([]mod{set("series", obj{"count": 2, "lastObservedTime": tsMicro}),
				set("related", obj{"kind": "Node", "name": "node-1"})}, newStyleCore...)...)),
			get(evPath("/web-1.a")),
			get(corePath("/web-1.a")).accepting(mediaTable),
		}},
		{name: "core/list-odd-limits", steps: []step{
			post(corePath(""), coreEvent("event-1")),
			post(corePath(""), coreEvent("event-2")),
			list(corePath(""), "limit", "0"),
			list(corePath(""), "limit", "-1"),
			get(corePath(""), "limit", "many"),
		}},
		{name: "core/get-with-parameters", steps: []step{
			post(corePath(""), coreEvent("web-1.a")),
			get(corePath("/web-1.a"), "resourceVersion", "0"),
			get(corePath("/web-1.a"), "resourceVersion", "abc"),
			get(corePath("/web-1.a"), "resourceVersion", "{{rv}}"),
			get(corePath("/web-1.a"), "resourceVersion", "999999999"),
			get(corePath("/web-1.a"), "pretty", "true"),
			get(corePath("/web-1.a"), "unknownParameter", "x"),
		}},
		{name: "core/watch-label-selector", steps: []step{
			post(corePath(""), coreEvent("event-a", labels("app", "web"))).saved("c"),
			post(corePath(""), coreEvent("event-b", labels("app", "db"))),
			put(corePath("/event-a"), coreEvent("event-a", labels("app", "web"), set("count", 2))),
			watch(corePath(""), 1, "resourceVersion", "{{c.rv}}", "labelSelector", "app=web"),
		}},
		{name: "core/deletecollection-with-limit", steps: []step{
			post(corePath(""), coreEvent("event-1")),
			post(corePath(""), coreEvent("event-2")),
			post(corePath(""), coreEvent("event-3")),
			list(corePath("")),
			del(corePath(""), "limit", "1"),
			list(corePath("")),
			del(corePath(""), "limit", "1", "continue", "{{continue}}"),
			list(corePath("")),
		}},
		{name: "core/patch-strategic-directives", steps: []step{
			post(corePath(""), coreEvent("web-1.a", labels("a", "1", "b", "2"))),
			patch(corePath("/web-1.a"), mediaStrategicPatch, `{"metadata":{"labels":{"$patch":"replace","c":"3"}}}`),
			patch(corePath("/web-1.a"), mediaStrategicPatch, `{"$setElementOrder/nothing":[],"count":null}`),
			patch(corePath("/web-1.a"), mediaMergePatch, `null`),
		}},
		{name: "events/update-series-through-patch", steps: []step{
			post(evPath(""), evEvent("web.a", set("series", obj{"count": 2, "lastObservedTime": tsMicro}))),
			patch(evPath("/web.a"), mediaMergePatch, `{"series":{"count":5}}`),
			patch(evPath("/web.a"), mediaMergePatch, `{"series":null}`),
			patch(evPath("/web.a"), mediaJSONPatch, `[{"op":"replace","path":"/eventTime","value":"`+tsFirst[:len(tsFirst)-1]+`.000000Z"}]`),
		}},
		{name: "events/apply-conflict-and-force", steps: []step{
			patch(evPath("/web.apply"), mediaApplyPatch, evEvent("web.apply"), "fieldManager", "one"),
			patch(evPath("/web.apply"), mediaApplyPatch, evEvent("web.apply", set("note", "other")), "fieldManager", "two"),
			patch(evPath("/web.apply"), mediaApplyPatch, evEvent("web.apply", set("note", "other")), "fieldManager", "two", "force", "true"),
			get(corePath("/web.apply")),
		}},
		{name: "core/apply-invalid", steps: []step{
			patch(corePath("/web-1.apply"), mediaApplyPatch, `{"apiVersion":"v1","kind":"Event","metadata":{"name":"other"}}`, "fieldManager", "tester"),
			patch(corePath("/web-1.apply"), mediaApplyPatch, `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web-1.apply"}}`, "fieldManager", "tester"),
			patch(corePath("/web-1.apply"), mediaApplyPatch, `: not yaml`, "fieldManager", "tester"),
			patch(corePath("/web-1.apply"), mediaApplyPatch, coreEvent("web-1.apply", set("colour", "blue")), "fieldManager", "tester"),
		}},
		{name: "both/list-all-namespaces-selectors", steps: []step{
			post(corePath(""), coreEvent("event-a", set("reason", "UniqueReason-{{ns}}"))),
			post(evPath(""), evEvent("event-b", set("reason", "UniqueReason-{{ns}}"))),
			list(coreAll, "fieldSelector", "reason=UniqueReason-{{ns}}"),
			list(evAll, "fieldSelector", "reason=UniqueReason-{{ns}}"),
			list(coreAll, "fieldSelector", "reason=UniqueReason-{{ns}}").accepting(mediaTable),
		}},
	}
}
