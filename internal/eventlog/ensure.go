package eventlog

import (
	"context"
	"errors"
	"slices"

	"github.com/nats-io/nats.go/jetstream"
)

// EnsureStream creates the stream of cfg, or updates it when the server's
// configuration differs from cfg in a setting cfg makes; an unchanged
// stream is left alone. Roles start side by side (dev mode runs them all in
// one process) and each ensures what it uses: an update that changes
// nothing would still race, inside the server, with the consumers another
// role is creating on the stream (nats-server 2.15's file store), so it is
// not sent.
func EnsureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	s, err := js.Stream(ctx, cfg.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		if s, err = js.CreateStream(ctx, cfg); !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return s, err
		}
		// Created by another role meanwhile: compare with it.
		s, err = js.Stream(ctx, cfg.Name)
	}
	if err != nil {
		return nil, err
	}
	if !streamDiffers(s.CachedInfo().Config, cfg) {
		return s, nil
	}
	return js.UpdateStream(ctx, cfg)
}

// streamDiffers reports whether have lacks a setting want makes. Settings
// want leaves at their zero value are the server's to default.
func streamDiffers(have, want jetstream.StreamConfig) bool {
	return len(want.Subjects) > 0 && !slices.Equal(have.Subjects, want.Subjects) ||
		have.Retention != want.Retention || have.Storage != want.Storage || have.Discard != want.Discard ||
		want.MaxAge != 0 && have.MaxAge != want.MaxAge ||
		want.MaxBytes != 0 && have.MaxBytes != want.MaxBytes ||
		want.MaxMsgs != 0 && have.MaxMsgs != want.MaxMsgs ||
		want.MaxMsgSize != 0 && have.MaxMsgSize != want.MaxMsgSize ||
		want.MaxMsgsPerSubject != 0 && have.MaxMsgsPerSubject != want.MaxMsgsPerSubject ||
		want.Duplicates != 0 && have.Duplicates != want.Duplicates ||
		want.Replicas != 0 && have.Replicas != want.Replicas ||
		want.Description != "" && have.Description != want.Description ||
		have.AllowDirect != want.AllowDirect || have.DenyDelete != want.DenyDelete || have.AllowRollup != want.AllowRollup
}

// EnsureKeyValue is EnsureStream for a key-value bucket: an existing
// bucket with the same history, TTL, storage and replicas is used as it is.
func EnsureKeyValue(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return js.CreateOrUpdateKeyValue(ctx, cfg)
	}
	if err != nil {
		return nil, err
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, err
	}
	bs, ok := st.(*jetstream.KeyValueBucketStatus)
	if !ok {
		return js.CreateOrUpdateKeyValue(ctx, cfg)
	}
	have := bs.StreamInfo().Config
	history := max(cfg.History, 1)
	if st.History() == int64(history) && st.TTL() == cfg.TTL && have.Storage == cfg.Storage && have.Replicas == max(cfg.Replicas, 1) &&
		(cfg.MaxBytes == 0 || have.MaxBytes == cfg.MaxBytes) {
		return kv, nil
	}
	return js.CreateOrUpdateKeyValue(ctx, cfg)
}
