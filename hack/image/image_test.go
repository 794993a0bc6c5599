package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/stretchr/testify/require"
)

const testVersion = "v0.0.0-imagetest"

// TestImage builds the image for this machine's platform, as `make image`
// does for every platform, reads it back the way each consumer does, and
// runs eventpipe from the image's own root filesystem as the image's user.
func TestImage(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the image is a Linux image; building and running it is tested on Linux")
	}
	platform := "linux/" + runtime.GOARCH
	dir := t.TempDir()
	out := filepath.Join(dir, "eventpipe-image.tar")

	// The builder runs as its own process, as `make image` runs it: inside
	// this test binary it would gzip and hash ~90 MB under the race
	// detector, which takes minutes instead of seconds.
	tool := filepath.Join(dir, "image")
	_, err := output(t.Context(), "", "go", "build", "-o", tool, ".")
	require.NoError(t, err)
	build := func(out string) {
		start := time.Now()
		cmd := exec.CommandContext(t.Context(), tool, "--platform", platform, "--version", testVersion, "--output", out)
		log, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", log)
		t.Logf("%s(%s)", log, time.Since(start).Round(time.Millisecond))
	}
	build(out)

	// The OCI layout: what podman load and docker's containerd store read,
	// and what `crane push DIR` reads once unpacked.
	layoutDir := filepath.Join(dir, "layout")
	untar(t, out, layoutDir, false)
	lp, err := layout.FromPath(layoutDir)
	require.NoError(t, err)
	index, err := lp.ImageIndex()
	require.NoError(t, err)
	im, err := index.IndexManifest()
	require.NoError(t, err)
	require.Len(t, im.Manifests, 1, "index.json names one image, as crane push of a layout directory wants")
	desc := im.Manifests[0]
	require.Equal(t, types.OCIManifestSchema1, desc.MediaType, "one platform: index.json points at the image itself")
	require.Equal(t, "eventpipe:"+testVersion, desc.Annotations[annotationRefName])
	require.Equal(t, "docker.io/library/eventpipe:"+testVersion, desc.Annotations[annotationContainerName])
	require.Empty(t, desc.ArtifactType, "an image, not an artifact")
	require.NotNil(t, desc.Platform)
	require.Equal(t, platform, desc.Platform.String())
	img, err := index.Image(desc.Digest)
	require.NoError(t, err)

	t.Run("manifest.json names the same image", func(t *testing.T) {
		// tarball.ImageFromPath is what `crane push FILE` loads; docker load
		// with the classic store reads the same manifest.json.
		tag, err := name.NewTag("eventpipe:" + testVersion)
		require.NoError(t, err)
		for _, tag := range []*name.Tag{nil, &tag} {
			dimg, err := tarball.ImageFromPath(out, tag)
			require.NoError(t, err)
			requireSameImage(t, img, dimg)
		}
	})

	t.Run("config", func(t *testing.T) {
		cf, err := img.ConfigFile()
		require.NoError(t, err)
		require.Equal(t, "linux", cf.OS)
		require.Equal(t, runtime.GOARCH, cf.Architecture)
		require.Equal(t, "65532:65532", cf.Config.User, "the image runs as nonroot by number, which runAsNonRoot can check")
		require.Equal(t, []string{binaryPath}, cf.Config.Entrypoint)
		require.Empty(t, cf.Config.Cmd)
		require.Equal(t, testVersion, cf.Config.Labels["org.opencontainers.image.version"])
		require.Equal(t, defaultSource, cf.Config.Labels["org.opencontainers.image.source"])
		require.Len(t, cf.RootFS.DiffIDs, 2, "a base layer shared by the platforms, and the binary")
	})

	rootfs := filepath.Join(dir, "rootfs")
	t.Run("filesystem", func(t *testing.T) {
		flat := filepath.Join(dir, "rootfs.tar")
		f, err := os.Create(flat)
		require.NoError(t, err)
		rc := mutate.Extract(img)
		_, err = io.Copy(f, rc)
		require.NoError(t, errors.Join(err, rc.Close(), f.Close()))
		headers := untar(t, flat, rootfs, os.Geteuid() == 0)

		for name := range headers {
			require.False(t, strings.HasPrefix(name, "bin/") || strings.HasPrefix(name, "sbin/") || strings.HasPrefix(name, "usr/bin/"),
				"%s: the image has no shell or other tools", name)
		}
		bin := headers[strings.TrimPrefix(binaryPath, "/")]
		require.NotNil(t, bin)
		require.Equal(t, 0, bin.Uid, "root owns the binary so the running user cannot change it")
		require.Equal(t, int64(0o755), bin.Mode&0o7777)
		tmp := headers["tmp"]
		require.NotNil(t, tmp)
		require.Equal(t, int64(0o1777), tmp.Mode&0o7777)

		want, err := os.ReadFile(caPath)
		require.NoError(t, err)
		got, err := os.ReadFile(filepath.Join(rootfs, caPath))
		require.NoError(t, err)
		require.True(t, bytes.Equal(want, got), "the CA bundle is the build machine's")
		passwd, err := os.ReadFile(filepath.Join(rootfs, "etc/passwd"))
		require.NoError(t, err)
		require.Contains(t, string(passwd), "nonroot:x:65532:65532:")
	})

	t.Run("eventpipe version runs from the image's root as its user", func(t *testing.T) {
		if os.Geteuid() != 0 {
			msg := "running eventpipe inside the image's root filesystem needs root (chroot, then setuid to 65532)"
			if os.Getenv("CI") != "" {
				t.Fatal(msg + "; CI runs as root, so this CI machine is set up wrongly")
			}
			t.Skip(msg + "; run the test as root to cover it")
		}
		cf, err := img.ConfigFile()
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		// The path is looked up inside the chroot: the command runs with no
		// shell and no libc but what the image brings, which is none.
		cmd := exec.CommandContext(ctx, cf.Config.Entrypoint[0], "version")
		cmd.Dir = cf.Config.WorkingDir
		cmd.Env = cf.Config.Env
		cmd.SysProcAttr = &syscall.SysProcAttr{
			Chroot:     rootfs,
			Credential: &syscall.Credential{Uid: 65532, Gid: 65532, Groups: []uint32{}},
		}
		outb, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", outb)
		got := string(outb)
		t.Logf("eventpipe version: %s", strings.TrimSpace(got))
		require.Contains(t, got, "eventpipe "+testVersion+" ")
		require.Contains(t, got, platform)
		// Built with -buildvcs, the binary names the commit when Go finds
		// the checkout: a .git directory at the module's root, as in CI's
		// clone. Go does not recognise a git worktree's .git file and then
		// leaves the commit out ("commit unknown").
		gomod, err := output(t.Context(), "", "go", "env", "GOMOD")
		require.NoError(t, err)
		if st, err := os.Stat(filepath.Join(filepath.Dir(gomod), ".git")); err == nil && st.IsDir() {
			rev, err := output(t.Context(), "", "git", "rev-parse", "HEAD")
			require.NoError(t, err)
			require.Contains(t, got, "commit "+rev)
		}
	})

	t.Run("the same commit gives the same tarball", func(t *testing.T) {
		again := filepath.Join(dir, "again.tar")
		build(again)
		require.Equal(t, fileSum(t, out), fileSum(t, again))
	})
}

// TestTwoPlatforms checks the multi-platform shape of the tarball without
// compiling eventpipe twice: the images hold a small file where the binary
// goes, which is all the assembly looks at.
func TestTwoPlatforms(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "") // the fallback date is under test
	dir := t.TempDir()
	o := Options{
		Platforms: []string{"linux/arm64", "linux/amd64"},
		Version:   testVersion,
		Output:    filepath.Join(dir, "two.tar"),
		ModuleDir: dir, // no checkout: the defaults that need git fall back
	}
	require.NoError(t, o.complete(t.Context()))
	require.Equal(t, time.Unix(0, 0).UTC(), o.created)
	base, err := newLayer(baseEntries([]byte("test CA bundle\n")), o.created)
	require.NoError(t, err)
	var images []v1.Image
	for _, p := range o.platforms {
		bin := filepath.Join(dir, p.Architecture)
		require.NoError(t, os.WriteFile(bin, []byte("stands in for eventpipe on "+p.String()), 0o755))
		img, err := o.image(p, base, bin)
		require.NoError(t, err)
		images = append(images, img)
	}
	digest, err := o.write(images)
	require.NoError(t, err)

	layoutDir := filepath.Join(dir, "layout")
	untar(t, o.Output, layoutDir, false)
	// What `crane push DIR REF` reads: exactly one entry, here an index.
	lp, err := layout.ImageIndexFromPath(layoutDir)
	require.NoError(t, err)
	im, err := lp.IndexManifest()
	require.NoError(t, err)
	require.Len(t, im.Manifests, 1)
	require.Equal(t, types.OCIImageIndex, im.Manifests[0].MediaType)
	require.Equal(t, digest, im.Manifests[0].Digest, "the digest write reports")
	require.Equal(t, "eventpipe:"+testVersion, im.Manifests[0].Annotations[annotationRefName])
	idx, err := lp.ImageIndex(im.Manifests[0].Digest)
	require.NoError(t, err)
	pm, err := idx.IndexManifest()
	require.NoError(t, err)
	require.Len(t, pm.Manifests, 2)
	var baseDigests []v1.Hash
	for i, d := range pm.Manifests {
		require.Equal(t, o.Platforms[i], d.Platform.String(), "the order asked for")
		require.Empty(t, d.ArtifactType)
		img, err := idx.Image(d.Digest)
		require.NoError(t, err)
		cf, err := img.ConfigFile()
		require.NoError(t, err)
		require.Equal(t, d.Platform.Architecture, cf.Architecture)
		layers, err := img.Layers()
		require.NoError(t, err)
		ld, err := layers[0].Digest()
		require.NoError(t, err)
		baseDigests = append(baseDigests, ld)
	}
	require.Equal(t, baseDigests[0], baseDigests[1], "the platforms share the base layer")

	// manifest.json describes one image: this machine's platform if built.
	dimg, err := tarball.ImageFromPath(o.Output, nil)
	require.NoError(t, err)
	want, err := idx.Image(pm.Manifests[o.dockerImage()].Digest)
	require.NoError(t, err)
	requireSameImage(t, want, dimg)
	if runtime.GOARCH == "amd64" || runtime.GOARCH == "arm64" {
		require.Equal(t, runtime.GOARCH, pm.Manifests[o.dockerImage()].Platform.Architecture)
	}
}

func TestFullName(t *testing.T) {
	for _, tc := range []struct{ tag, want string }{
		{"eventpipe:v1", "docker.io/library/eventpipe:v1"},
		{"docker.io/library/eventpipe:v1", "docker.io/library/eventpipe:v1"},
		{"example/eventpipe:v1", "docker.io/example/eventpipe:v1"},
		{"ghcr.io/example/eventpipe:v1", "ghcr.io/example/eventpipe:v1"},
		{"localhost:5000/eventpipe:v1", "localhost:5000/eventpipe:v1"},
	} {
		t.Run(tc.tag, func(t *testing.T) {
			tag, err := name.NewTag(tc.tag)
			require.NoError(t, err)
			require.Equal(t, tc.want, fullName(tag))
		})
	}
}

// requireSameImage checks that two readers of the tarball see one image:
// the same config blob and the same layer blobs.
func requireSameImage(t *testing.T, want, got v1.Image) {
	t.Helper()
	wc, err := want.ConfigName()
	require.NoError(t, err)
	gc, err := got.ConfigName()
	require.NoError(t, err)
	require.Equal(t, wc, gc, "config digest (the image ID)")
	wl, err := want.Layers()
	require.NoError(t, err)
	gl, err := got.Layers()
	require.NoError(t, err)
	require.Equal(t, len(wl), len(gl))
	for i := range wl {
		wd, err := wl[i].Digest()
		require.NoError(t, err)
		gd, err := gl[i].Digest()
		require.NoError(t, err)
		require.Equal(t, wd, gd, "layer %d", i)
	}
}

// untar unpacks the tar file src into dst and returns its headers by
// cleaned name ("tmp", not "tmp/").
// It knows the regular files and directories the image tarball and the
// image's layers hold, and refuses anything else. With chown it also gives
// each entry its owner, which needs root.
func untar(t *testing.T, src, dst string, chown bool) map[string]*tar.Header {
	t.Helper()
	f, err := os.Open(src)
	require.NoError(t, err)
	defer f.Close()
	require.NoError(t, os.MkdirAll(dst, 0o755))
	// A chroot's "/" must be searchable by the user it runs as.
	require.NoError(t, os.Chmod(dst, 0o755))
	headers := map[string]*tar.Header{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		clean := filepath.Clean(h.Name)
		headers[clean] = h
		require.False(t, filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../"), "unsafe path %q", h.Name)
		path := filepath.Join(dst, clean)
		mode := h.FileInfo().Mode()
		switch h.Typeflag {
		case tar.TypeDir:
			require.NoError(t, os.MkdirAll(path, 0o755))
		case tar.TypeReg:
			w, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
			require.NoError(t, err)
			_, err = io.Copy(w, tr)
			require.NoError(t, errors.Join(err, w.Close()))
		default:
			t.Fatalf("%s: unexpected tar entry type %q", h.Name, h.Typeflag)
		}
		if chown {
			require.NoError(t, os.Lchown(path, h.Uid, h.Gid))
		}
		// After chown, which clears set-id bits; with the sticky bit.
		require.NoError(t, os.Chmod(path, mode.Perm()|mode&os.ModeSticky))
	}
	return headers
}

func fileSum(t *testing.T, path string) [sha256.Size]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return sha256.Sum256(b)
}
