package validation

import corev1 "k8s.io/api/core/v1"

// PrepareForCreate is the Event strategy's create hook. kube-apiserver's
// Event strategy leaves the object exactly as the client sent it: no status
// to clear, no generation to start, no defaults (neither core/v1 nor
// events.k8s.io/v1 has defaulting functions for Event). So this does
// nothing, and exists so that a strategy can say so explicitly.
//
// What does change on create happens in the generic registry, before this
// hook runs (genericregistry.Store.create and rest.BeforeCreate in
// k8s.io/apiserver):
//
//   - creationTimestamp is set to the current time and uid to a new random
//     UUID, overwriting whatever the client sent (rest.FillObjectMetaSystemFields);
//   - an empty name with a generateName becomes generateName plus five
//     random characters (names.SimpleNameGenerator);
//   - an empty namespace takes the request's namespace, and a different one
//     is refused (rest.EnsureObjectNamespaceMatchesRequestNamespace).
//
// generation is not touched: an Event keeps the generation the client sent
// (a negative one fails the generic metadata checks). deletionTimestamp and
// deletionGracePeriodSeconds are not cleared on a plain create; they are on
// a create through update (PUT of a missing Event), which first wipes the
// system fields (rest.WipeObjectMetaSystemFields) and then fills them.
func PrepareForCreate(ev *corev1.Event) {}

// PrepareForUpdate is the Event strategy's update hook. kube-apiserver's
// Event strategy does nothing here either: an Event has no status and no
// spec/status split, so no field is reset from the old object.
//
// rest.BeforeUpdate in k8s.io/apiserver does the following around this
// hook: generation is always copied from the old object; uid is copied when
// the new one is empty; creationTimestamp is copied when the old one is set;
// deletionTimestamp is copied when the old one is set; and
// deletionGracePeriodSeconds is copied when the old one is set and the new
// one is not. The store fills an empty resourceVersion with the current one,
// since Events allow unconditional updates.
func PrepareForUpdate(newEv, oldEv *corev1.Event) {}
