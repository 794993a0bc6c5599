// Package core holds eventpipe's internal Event types: the hub version that
// both served groups (core/v1 and events.k8s.io/v1) decode requests into,
// as kube-apiserver decodes them into its internal core.Event.
//
// The types have exactly the fields of core/v1 (kube's internal Event has
// the same fields as core/v1 too), so a conversion to or from core/v1 is a
// copy. They exist as types of their own, in a package named core, for two
// reasons: a body of the wrong kind or group must be refused with kube's
// words ("converting (v1.Pod) to (core.Event)", "the API version in the
// data (events.k8s.io/v1) does not match the expected API version (v1)"),
// which name the internal type and need a conversion from the other group;
// and the internal version must not share a Go type with core/v1, or
// core/v1's OpenAPI definition would carry the internal version's
// group-version-kind.
//
// Storage never keeps these types: it converts them to core/v1 at once.
package core

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Event is the internal Event.
type Event corev1.Event

// EventList is the internal EventList.
type EventList corev1.EventList

// DeepCopyObject implements runtime.Object.
func (e *Event) DeepCopyObject() runtime.Object {
	if e == nil {
		return nil
	}
	return (*Event)((*corev1.Event)(e).DeepCopy())
}

// DeepCopyObject implements runtime.Object.
func (l *EventList) DeepCopyObject() runtime.Object {
	if l == nil {
		return nil
	}
	return (*EventList)((*corev1.EventList)(l).DeepCopy())
}

// V1 returns e as a core/v1 Event; they share memory.
func (e *Event) V1() *corev1.Event { return (*corev1.Event)(e) }

// V1 returns l as a core/v1 EventList; they share memory.
func (l *EventList) V1() *corev1.EventList { return (*corev1.EventList)(l) }
