package tailwatch

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/storage"
)

// From resolves where a watch from resourceVersion rv (a sequence, not ""
// or "0") starts: the first sequence its tail delivers. When the log no
// longer holds the states right after rv, it returns instead the watch to
// answer with, which opens and then says 410 Expired, as kube-apiserver's
// watch cache does. bounds gives the log's first and last sequences;
// unavailable turns its error into the registry's 503.
func From(ctx context.Context, rv string, bounds func(context.Context) (first, last uint64, err error), unavailable func(error) error) (from uint64, expired watch.Interface, err error) {
	v, err := ParseResourceVersion(rv)
	if err != nil {
		return 0, nil, err
	}
	first, _, err := bounds(ctx)
	if err != nil {
		return 0, nil, unavailable(err)
	}
	if v+1 < first {
		return 0, Error(&apierrors.NewResourceExpired(fmt.Sprintf("too old resource version: %d (%d)", v, first-1)).ErrStatus), nil
	}
	return v + 1, nil, nil
}

// ParseResourceVersion reads a resourceVersion parameter, refusing what
// kube-apiserver's storage refuses, with its 400 and text.
func ParseResourceVersion(s string) (uint64, error) {
	v, err := storage.APIObjectVersioner{}.ParseResourceVersion(s)
	if err != nil {
		return 0, apierrors.NewBadRequest(fmt.Sprintf("invalid resource version: %v", err))
	}
	return v, nil
}

// Objects returns a list's items as a watch's initial objects, obj making
// each from a pointer into items (so items must not be reused after).
func Objects[T any](items []T, obj func(*T) runtime.Object) []runtime.Object {
	objs := make([]runtime.Object, len(items))
	for i := range items {
		objs[i] = obj(&items[i])
	}
	return objs
}
