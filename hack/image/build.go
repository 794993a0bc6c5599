package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/spf13/pflag"
)

// The tarball's format.
//
// bin/eventpipe-image.tar is an OCI image layout (oci-layout, index.json,
// blobs/sha256/…) packed in a tar, with a Docker-style manifest.json beside
// index.json that names the same config and layer blobs: the shape `docker
// save` has written since Docker 25. Each consumer finds what it reads:
//
//   - podman load reads it as an oci-archive (index.json), naming the image
//     from the io.containerd.image.name annotation;
//   - docker load reads manifest.json with the classic image store and
//     index.json with the containerd image store;
//   - crane push PATH reads a file as a docker-save tarball, that is
//     manifest.json (tarball.ImageFromPath), and a directory as an OCI layout,
//     so the unpacked tar is also a valid `crane push DIR`.
//
// index.json has one entry: the image itself when one platform is built, an
// image index of all of them otherwise. manifest.json can describe single
// images only (and crane wants exactly one), so it lists one: the build
// machine's platform if it was built, else the first one asked for, as
// Docker does for a multi-platform save. To push every platform, push the
// unpacked layout directory (docs/deploy.md, "The image").

const (
	// binaryPath is where the image keeps eventpipe, on the default PATH.
	binaryPath = "/usr/local/bin/eventpipe"
	// caPath is where Go's crypto/x509 looks first on Linux.
	caPath = "/etc/ssl/certs/ca-certificates.crt"
	// nonrootID is the uid and gid the image runs as: distroless's and ko's
	// "nonroot", so a PodSecurity "restricted" namespace and a runAsNonRoot
	// pod accept the image as it is.
	nonrootID = 65532
	// versionVar receives the version at link time, as internal/version says.
	versionVar = "github.com/eventpipe/eventpipe/internal/version.Version"
	// defaultSource is the repository the image's source label names.
	defaultSource = "https://github.com/eventpipe/eventpipe"

	// Annotations on index.json's entry. ref.name is OCI's (containers/image
	// and skopeo select by it); io.containerd.image.name carries the full
	// reference, which podman and containerd prefer, as `docker save` writes.
	annotationRefName       = "org.opencontainers.image.ref.name"
	annotationContainerName = "io.containerd.image.name"
)

// versionRE is what a version may contain: it ends up in a link flag and in
// the default image tag, which allows no spaces, '+' or '/'.
var versionRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// Options says what to build and where to write it.
type Options struct {
	// Platforms to build, as os/arch[/variant]; only linux.
	Platforms []string
	// Version is linked into the binary and labels the image; empty means
	// `git describe --tags --always --dirty`.
	Version string
	// Tag names the image in manifest.json and index.json; empty means
	// eventpipe:VERSION.
	Tag string
	// Output is the tarball to write.
	Output string
	// CACerts is the CA bundle copied from the build machine.
	CACerts string
	// Source is the org.opencontainers.image.source label.
	Source string
	// ModuleDir is the eventpipe module's root; empty means the module of
	// the current directory (`go env GOMOD`).
	ModuleDir string
	// Log receives progress lines; nil discards them.
	Log io.Writer

	// Filled by complete.
	platforms []v1.Platform
	tag       name.Tag
	created   time.Time
	revision  string
}

// RegisterFlags registers the options' flags with their defaults.
func (o *Options) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringSliceVar(&o.Platforms, "platform", []string{"linux/amd64", "linux/arm64"}, "platforms to build, comma-separated os/arch[/variant]")
	fs.StringVar(&o.Version, "version", "", "version linked into eventpipe and used in the default tag (default: git describe --tags --always --dirty)")
	fs.StringVar(&o.Tag, "tag", "", "image reference written into the tarball for docker load and podman load (default: eventpipe:VERSION)")
	fs.StringVar(&o.Output, "output", "bin/eventpipe-image.tar", "tarball to write")
	fs.StringVar(&o.CACerts, "ca-certificates", caPath, "CA bundle of the build machine to copy into the image")
	fs.StringVar(&o.Source, "source", defaultSource, "org.opencontainers.image.source label")
}

// Build compiles eventpipe for each platform and writes the image tarball.
func Build(ctx context.Context, o Options) error {
	start := time.Now()
	if o.Log == nil {
		o.Log = io.Discard
	}
	if err := o.complete(ctx); err != nil {
		return err
	}

	certs, err := os.ReadFile(o.CACerts)
	if err != nil {
		return fmt.Errorf("read CA certificates: %w", err)
	}
	base, err := newLayer(baseEntries(certs), o.created)
	if err != nil {
		return fmt.Errorf("base layer: %w", err)
	}

	binDir, err := os.MkdirTemp("", "eventpipe-image-bin-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(binDir)

	images := make([]v1.Image, 0, len(o.platforms))
	for _, p := range o.platforms {
		bin := filepath.Join(binDir, strings.ReplaceAll(p.String(), "/", "-"), "eventpipe")
		t := time.Now()
		if err := o.compile(ctx, p, bin); err != nil {
			return err
		}
		fmt.Fprintf(o.Log, "image: built eventpipe %s for %s in %s\n", o.Version, p, time.Since(t).Round(time.Millisecond))
		img, err := o.image(p, base, bin)
		if err != nil {
			return fmt.Errorf("assemble %s image: %w", p, err)
		}
		images = append(images, img)
	}

	digest, err := o.write(images)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Log, "image: wrote %s in %s: %s, %s, %s\n", o.Output, time.Since(start).Round(time.Millisecond), o.Tag, platformList(o.platforms), digest)
	return nil
}

// complete validates the options and fills in the defaults that need the
// module and its git checkout.
func (o *Options) complete(ctx context.Context) error {
	if len(o.Platforms) == 0 {
		return errors.New("no --platform given")
	}
	seen := map[string]bool{}
	for _, s := range o.Platforms {
		p, err := v1.ParsePlatform(s)
		if err != nil {
			return fmt.Errorf("--platform %q: %w", s, err)
		}
		if p.OS != "linux" {
			return fmt.Errorf("--platform %q: only linux images can be built", s)
		}
		if seen[p.String()] {
			return fmt.Errorf("--platform %q given twice", s)
		}
		seen[p.String()] = true
		o.platforms = append(o.platforms, *p)
	}
	if o.Output == "" {
		return errors.New("no --output given")
	}
	if o.CACerts == "" {
		o.CACerts = caPath
	}
	if o.ModuleDir == "" {
		gomod, err := output(ctx, "", "go", "env", "GOMOD")
		if err != nil {
			return err
		}
		if gomod == "" || gomod == os.DevNull {
			return errors.New("not inside a Go module: run from the eventpipe checkout")
		}
		o.ModuleDir = filepath.Dir(gomod)
	}

	// The git facts are optional: a source tree without .git still builds,
	// as v0.0.0-dev with the Unix epoch as its date.
	if o.Version == "" {
		o.Version = "v0.0.0-dev"
		if v, err := output(ctx, o.ModuleDir, "git", "describe", "--tags", "--always", "--dirty"); err == nil && v != "" {
			o.Version = v
		}
	}
	if !versionRE.MatchString(o.Version) {
		return fmt.Errorf("--version %q: use letters, digits, '_', '.' and '-' only", o.Version)
	}
	if rev, err := output(ctx, o.ModuleDir, "git", "rev-parse", "HEAD"); err == nil {
		o.revision = rev
	}
	created, err := o.sourceDate(ctx)
	if err != nil {
		return err
	}
	o.created = created

	if o.Tag == "" {
		o.Tag = "eventpipe:" + o.Version
	}
	tag, err := name.NewTag(o.Tag)
	if err != nil {
		return fmt.Errorf("--tag: %w", err)
	}
	o.tag = tag
	return nil
}

// sourceDate is the one timestamp the image carries, on every file and in
// the config, so that the same commit always gives the same digest:
// SOURCE_DATE_EPOCH if set (the reproducible-builds convention), else the
// commit's date, else the Unix epoch.
func (o *Options) sourceDate(ctx context.Context) (time.Time, error) {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", s, err)
		}
		return time.Unix(sec, 0).UTC(), nil
	}
	if s, err := output(ctx, o.ModuleDir, "git", "log", "-1", "--format=%ct"); err == nil {
		if sec, err := strconv.ParseInt(s, 10, 64); err == nil {
			return time.Unix(sec, 0).UTC(), nil
		}
	}
	return time.Unix(0, 0).UTC(), nil
}

// compile cross-builds a static cmd/eventpipe for p into out.
func (o *Options) compile(ctx context.Context, p v1.Platform, out string) error {
	ldflags := "-s -w -X " + versionVar + "=" + o.Version
	// -buildvcs=auto overrides the -buildvcs=false in this machine's GOFLAGS:
	// `eventpipe version` reports the commit from the build info, and an
	// image that cannot say which commit it runs is hard to support. Where
	// there is no git checkout, auto quietly leaves the commit out.
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=auto", "-ldflags", ldflags, "-o", out, "./cmd/eventpipe")
	cmd.Dir = o.ModuleDir
	env := append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Architecture)
	// Pin the baseline instruction sets so that a GOAMD64 or GOARM64 in the
	// builder's environment cannot make an image that some nodes cannot run.
	switch p.Architecture {
	case "amd64":
		env = append(env, "GOAMD64=v1")
	case "arm64":
		env = append(env, "GOARM64=v8.0")
	case "arm":
		goarm := "7"
		if v := strings.TrimPrefix(p.Variant, "v"); v == "5" || v == "6" {
			goarm = v
		}
		env = append(env, "GOARM="+goarm)
	}
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build for %s: %w\n%s", p, err, stderr.Bytes())
	}
	return nil
}

// image assembles one platform's image on an empty base: the shared base
// layer, then the binary.
func (o *Options) image(p v1.Platform, base v1.Layer, bin string) (v1.Image, error) {
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	app, err := newLayer(appEntries(data), o.created)
	if err != nil {
		return nil, fmt.Errorf("binary layer: %w", err)
	}

	labels := map[string]string{
		"org.opencontainers.image.title":   "eventpipe",
		"org.opencontainers.image.version": o.Version,
	}
	if o.Source != "" {
		labels["org.opencontainers.image.source"] = o.Source
	}
	if o.revision != "" {
		labels["org.opencontainers.image.revision"] = o.revision
	}
	created := v1.Time{Time: o.created}
	cf := &v1.ConfigFile{
		Architecture: p.Architecture,
		OS:           p.OS,
		Variant:      p.Variant,
		Created:      created,
		RootFS:       v1.RootFS{Type: "layers"},
		Config: v1.Config{
			// Numeric, so the runtime needs no /etc/passwd lookup and the
			// kubelet can check runAsNonRoot against it.
			User:       fmt.Sprintf("%d:%d", nonrootID, nonrootID),
			Entrypoint: []string{binaryPath},
			WorkingDir: "/",
			Env: []string{
				"PATH=/usr/local/bin",
				// Go finds the bundle at this path anyway; naming it lets an
				// operator point at a mounted bundle of their own instead.
				"SSL_CERT_FILE=" + caPath,
				"HOME=/home/nonroot",
			},
			Labels: labels,
		},
	}

	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, err
	}
	return mutate.Append(img,
		mutate.Addendum{Layer: base, History: v1.History{Created: created, CreatedBy: "hack/image: CA certificates, nonroot user, /tmp", Comment: "eventpipe base"}},
		mutate.Addendum{Layer: app, History: v1.History{Created: created, CreatedBy: "hack/image: go build ./cmd/eventpipe", Comment: "eventpipe " + o.Version}},
	)
}

// write lays the images out as an OCI layout with a Docker manifest.json in
// a scratch directory and packs that into Output (see "The tarball's
// format" above). It returns the digest of index.json's one entry, which a
// push of the layout keeps.
func (o *Options) write(images []v1.Image) (v1.Hash, error) {
	var top mutate.Appendable
	var desc v1.Descriptor
	if len(images) == 1 {
		top = plainImage{images[0]}
		desc.Platform = &o.platforms[0]
	} else {
		idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
		for i, img := range images {
			idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: plainImage{img}, Descriptor: v1.Descriptor{Platform: &o.platforms[i]}})
		}
		top = idx
	}
	desc.Annotations = map[string]string{
		annotationRefName:       o.Tag,
		annotationContainerName: fullName(o.tag),
	}
	index := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), mutate.IndexAddendum{Add: top, Descriptor: desc})

	dir, err := os.MkdirTemp("", "eventpipe-image-layout-")
	if err != nil {
		return v1.Hash{}, err
	}
	defer os.RemoveAll(dir)
	if _, err := layout.Write(dir, index); err != nil {
		return v1.Hash{}, fmt.Errorf("write OCI layout: %w", err)
	}

	manifest, err := dockerManifest(images[o.dockerImage()], o.Tag)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), manifest, 0o644); err != nil {
		return v1.Hash{}, err
	}

	if err := os.MkdirAll(filepath.Dir(o.Output), 0o755); err != nil {
		return v1.Hash{}, err
	}
	f, err := os.CreateTemp(filepath.Dir(o.Output), filepath.Base(o.Output)+".*.tmp")
	if err != nil {
		return v1.Hash{}, err
	}
	defer os.Remove(f.Name()) // after the rename this finds nothing
	if err := tarDir(f, dir, o.created); err != nil {
		f.Close()
		return v1.Hash{}, fmt.Errorf("pack %s: %w", o.Output, err)
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return v1.Hash{}, err
	}
	if err := f.Close(); err != nil {
		return v1.Hash{}, err
	}
	if err := os.Rename(f.Name(), o.Output); err != nil {
		return v1.Hash{}, err
	}
	return top.Digest()
}

// plainImage describes an image without the artifactType that
// go-containerregistry gives every image descriptor (the config's media
// type): OCI reserves artifactType for artifacts, and the index entries
// docker, buildx and podman write for a plain image carry none.
type plainImage struct{ v1.Image }

// Descriptor is what an index lists for the image.
func (i plainImage) Descriptor() (*v1.Descriptor, error) {
	d, err := partial.Descriptor(i.Image)
	if err != nil {
		return nil, err
	}
	d.ArtifactType = ""
	return d, nil
}

// dockerImage is the index of the image manifest.json describes: the build
// machine's platform if it was built, else the first.
func (o *Options) dockerImage() int {
	for i, p := range o.platforms {
		if p.OS == runtime.GOOS && p.Architecture == runtime.GOARCH {
			return i
		}
	}
	return 0
}

// dockerManifestEntry is one image in a `docker save` manifest.json; its
// paths name files inside the tarball.
type dockerManifestEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// dockerManifest writes manifest.json for img, pointing into the OCI
// layout's blobs so that nothing is stored twice. Layers are the gzip blobs
// of the layout: docker load and tarball.ImageFromPath both detect the
// compression.
func dockerManifest(img v1.Image, tag string) ([]byte, error) {
	cfg, err := img.ConfigName()
	if err != nil {
		return nil, err
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	e := dockerManifestEntry{Config: blobPath(cfg), RepoTags: []string{tag}}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return nil, err
		}
		e.Layers = append(e.Layers, blobPath(d))
	}
	return json.Marshal([]dockerManifestEntry{e})
}

func blobPath(h v1.Hash) string { return "blobs/" + h.Algorithm + "/" + h.Hex }

// fullName is the reference as Docker normalises it (docker.io/library/…),
// the form io.containerd.image.name holds.
func fullName(t name.Tag) string {
	repo := t.RepositoryStr()
	if reg := t.RegistryStr(); reg != name.DefaultRegistry {
		repo = reg + "/" + repo
	} else {
		repo = "docker.io/" + repo
	}
	return repo + ":" + t.TagStr()
}

func platformList(ps []v1.Platform) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

// entry is one file or directory of a layer.
type entry struct {
	name     string // relative, no leading slash; directories end in '/'
	mode     int64  // permission bits, with 0o1000 for sticky
	uid, gid int
	data     []byte // nil for a directory
}

// baseEntries is what every platform's image shares, so a registry stores
// it once: the CA bundle, the nonroot user and a world-writable /tmp (pods
// run with a read-only root and mount an emptyDir there; the directory
// keeps /tmp usable without one too).
func baseEntries(certs []byte) []entry {
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", nonrootID, nonrootID)
	group := fmt.Sprintf("root:x:0:\nnobody:x:65534:\nnonroot:x:%d:\n", nonrootID)
	return []entry{
		{name: "etc/", mode: 0o755},
		{name: "etc/group", mode: 0o644, data: []byte(group)},
		{name: "etc/passwd", mode: 0o644, data: []byte(passwd)},
		{name: "etc/ssl/", mode: 0o755},
		{name: "etc/ssl/certs/", mode: 0o755},
		{name: strings.TrimPrefix(caPath, "/"), mode: 0o644, data: certs},
		{name: "home/", mode: 0o755},
		{name: "home/nonroot/", mode: 0o700, uid: nonrootID, gid: nonrootID},
		{name: "tmp/", mode: 0o1777},
	}
}

// appEntries is the binary, owned by root so the running user cannot change it.
func appEntries(bin []byte) []entry {
	return []entry{
		{name: "usr/", mode: 0o755},
		{name: "usr/local/", mode: 0o755},
		{name: "usr/local/bin/", mode: 0o755},
		{name: strings.TrimPrefix(binaryPath, "/"), mode: 0o755, data: bin},
	}
}

// newLayer packs entries into a gzip layer the same way every time: sorted
// names, one fixed time, numeric owners only, and a gzip header without a
// name or time, so equal input gives an equal digest.
func newLayer(entries []entry, mtime time.Time) (v1.Layer, error) {
	sorted := append([]entry(nil), entries...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].name < sorted[j].name })

	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range sorted {
		h := &tar.Header{
			Name:    e.name,
			Mode:    e.mode,
			Uid:     e.uid,
			Gid:     e.gid,
			ModTime: mtime,
			Format:  tar.FormatPAX,
		}
		if strings.HasSuffix(e.name, "/") {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer))
}

// tarDir packs the layout directory into w with the same determinism as
// the layers: lexical order (WalkDir's), one time, root-owned entries.
func tarDir(w io.Writer, dir string, mtime time.Time) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		h := &tar.Header{Name: filepath.ToSlash(rel), ModTime: mtime, Format: tar.FormatPAX}
		if d.IsDir() {
			h.Typeflag, h.Name, h.Mode = tar.TypeDir, h.Name+"/", 0o755
			return tw.WriteHeader(h)
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s: not a regular file", rel)
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		h.Typeflag, h.Mode, h.Size = tar.TypeReg, 0o644, st.Size()
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// output runs a command and returns its trimmed standard output.
func output(ctx context.Context, dir, prog string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", prog, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}
