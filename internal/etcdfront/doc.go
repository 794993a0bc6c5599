// Package etcdfront is the etcd front door: a gRPC server that speaks the
// etcd v3 API for kube-apiserver's Events key space, so that a stock
// kube-apiserver started with --etcd-servers-overrides=/events#<front>
// stores its Events in eventpipe instead of etcd.
//
// The front is a view over the same log, index and shared watch tail as
// the Kubernetes API server (registry/event):
//
//   - a key /registry/events/<namespace>/<name> is the event of that name in
//     the scope of the kube-apiserver that connected (its client
//     certificate, or the front's one scope);
//   - a revision is an EVENTS stream sequence, the resourceVersion of every
//     other front door; the header revision of a read is the log's newest
//     sequence, so a Range at revision 0 reflects every acknowledged write
//     (the index up to the writer's watermark, plus the log after it);
//   - a transaction in kube-apiserver's shapes (create, guaranteed update,
//     delete, compaction) is a publish with JetStream's expected last
//     subject sequence, which is etcd's mod_revision comparison;
//   - a Watch is a feed of the shared tail;
//   - a lease lives in a JetStream key-value bucket; when it runs out the
//     front writes an OpExpire state for each event still attached to it,
//     which kube-apiserver sees as etcd's delete and history keeps.
//
// Values are decoded into the stored core/v1 Event and encoded back in the
// media type kube-apiserver stores (--storage-media-type), byte for byte
// what it wrote: the stored Event is lossless for both encodings.
package etcdfront
