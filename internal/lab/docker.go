package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"vxswitch/dockerplugin"
)

// A lab made with Options.Docker gives each agent host a mount namespace
// of its own, kept in a file (like `ip netns add` keeps network
// namespaces), with the host's private plugin directory bound over
// /run/docker/plugins. The agent, with --docker-plugin, and the host's
// Docker engine both run in it: Docker finds that host's plugin and no
// other, and the agent sees the container namespaces the engine mounts,
// as on a machine with one engine.

// mountNSDir is the directory, below the state directory, that holds the
// mount namespace files; it is a private mount, as nsfs bind mounts need.
func (o *Options) mountNSDir() string { return filepath.Join(o.StateDir, "mntns") }

// dockerDir is where host's engine keeps its data, exec root and socket;
// below data/, so Down kills whatever still runs from it.
func (o *Options) dockerDir(host string) string {
	return filepath.Join(o.StateDir, "data", "docker-"+host)
}

// makeMountNS makes the mount namespace file of agent a and binds its
// plugin directory over /run/docker/plugins inside.
func (c *Cluster) makeMountNS(a *Agent) error {
	dir := c.Opt.mountNSDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	if !isMountPoint(dir) {
		if err := run("mount", "--bind", dir, dir); err != nil {
			return err
		}
		if err := run("mount", "--make-private", dir); err != nil {
			return err
		}
	}
	a.MountNS = filepath.Join(dir, a.Host.Name)
	plugins := filepath.Join(c.Opt.dockerDir(a.Host.Name), "plugins")
	for _, d := range []string{plugins, "/run/docker/plugins"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("lab: %w", err)
		}
	}
	if err := os.WriteFile(a.MountNS, nil, 0o644); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	if err := run("unshare", "--mount="+a.MountNS, "--propagation", "slave", "true"); err != nil {
		return err
	}
	return run("nsenter", "--mount="+a.MountNS, "mount", "--bind", plugins, "/run/docker/plugins")
}

// isMountPoint tells whether dir is a mount point (its device differs
// from its parent's).
func isMountPoint(dir string) bool {
	var st, parent syscall.Stat_t
	if syscall.Stat(dir, &st) != nil || syscall.Stat(filepath.Dir(dir), &parent) != nil {
		return false
	}
	b, _ := os.ReadFile("/proc/self/mountinfo")
	return st.Dev != parent.Dev || strings.Contains(string(b), " "+dir+" ")
}

// removeMountNSes unmounts the mount namespace files and their directory.
func removeMountNSes(opt Options) {
	dir := opt.mountNSDir()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		syscall.Unmount(filepath.Join(dir, e.Name()), syscall.MNT_DETACH)
	}
	syscall.Unmount(dir, syscall.MNT_DETACH)
}

func run(name string, args ...string) error {
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("lab: %s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// dockerAgentArgs are the agent flags of a Docker lab host.
func (c *Cluster) dockerAgentArgs(a *Agent) []string {
	return []string{"--docker-plugin", dockerplugin.DefaultSocket,
		"--docker-host", "unix://" + filepath.Join(c.Opt.dockerDir(a.Host.Name), "docker.sock")}
}

// Engine is a Docker engine (dockerd) running on a lab host.
type Engine struct {
	Host   string
	Dir    string // data root, exec root, socket and log live below it
	Socket string // the engine's API socket
	proc   *os.Process
	exited chan struct{}
}

// StartDocker starts a Docker engine on host i of a lab made with
// Options.Docker, inside the host's network and mount namespaces, with no
// iptables and no default bridge, and waits until it answers.
func (c *Cluster) StartDocker(ctx context.Context, i int) (*Engine, error) {
	a := c.Agents[i]
	if a.MountNS == "" {
		return nil, errors.New("lab: StartDocker needs a lab made with Options.Docker")
	}
	dir := c.Opt.dockerDir(a.Host.Name)
	e := &Engine{Host: a.Host.Name, Dir: dir, Socket: filepath.Join(dir, "docker.sock")}
	log, err := os.OpenFile(filepath.Join(dir, "dockerd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	defer log.Close()
	cmd := exec.Command("nsenter", "--mount="+a.MountNS, "--net="+a.Host.NSPath,
		"dockerd", "--iptables=false", "--ip6tables=false", "--bridge=none", "--shutdown-timeout=1",
		"--data-root", filepath.Join(dir, "root"), "--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "dockerd.pid"), "-H", "unix://"+e.Socket)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("lab: start dockerd on %s: %w", a.Host.Name, err)
	}
	e.proc, e.exited = cmd.Process, make(chan struct{})
	go func() { cmd.Wait(); close(e.exited) }()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		if _, err := e.Docker(ctx, "version"); err == nil {
			return e, nil
		}
		select {
		case <-e.exited:
			return nil, fmt.Errorf("lab: dockerd on %s exited: %s", a.Host.Name, tail(filepath.Join(dir, "dockerd.log")))
		case <-ctx.Done():
			e.Stop()
			return nil, fmt.Errorf("lab: dockerd on %s did not answer: %s", a.Host.Name, tail(filepath.Join(dir, "dockerd.log")))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Docker runs the docker CLI against the engine and returns its output;
// the error holds the output too.
func (e *Engine) Docker(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "docker", append([]string{"-H", "unix://" + e.Socket}, args...)...)
	cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("docker %s on %s: %v: %s", strings.Join(args, " "), e.Host, err, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
}

// BuildBusybox builds the image name FROM scratch with the machine's
// static busybox (Debian's busybox-static), since nothing can be pulled.
func (e *Engine) BuildBusybox(ctx context.Context, name string) error {
	dir := filepath.Join(e.Dir, "image")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	b, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return fmt.Errorf("lab: a static busybox is needed (apt-get install busybox-static): %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "busybox"), b, 0o755); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	df := "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	_, err = e.Docker(ctx, "build", "-q", "-t", name, dir)
	return err
}

// Kill stops the engine with sig without removing its containers first
// (SIGTERM: Docker stops them and detaches their endpoints; SIGKILL: it
// does not), and waits for it to exit.
func (e *Engine) Kill(sig syscall.Signal) {
	if e.proc == nil {
		return
	}
	e.proc.Signal(sig)
	select {
	case <-e.exited:
	case <-time.After(30 * time.Second):
		e.proc.Kill()
		<-e.exited
	}
	e.proc = nil
}

// Stop removes the engine's containers and stops it (SIGTERM, then
// SIGKILL after 15 s).
func (e *Engine) Stop() {
	if e.proc == nil {
		return
	}
	e.removeContainers()
	e.proc.Signal(syscall.SIGTERM)
	select {
	case <-e.exited:
	case <-time.After(15 * time.Second):
		e.proc.Kill()
		<-e.exited
	}
	e.proc = nil
}

// removeContainers removes every container of the engine, running or not.
func (e *Engine) removeContainers() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if ids, err := e.Docker(ctx, "ps", "-aq"); err == nil && ids != "" {
		e.Docker(ctx, append([]string{"rm", "-f"}, strings.Fields(ids)...)...)
	}
}

// LogTail returns the last lines of the engine's log.
func (e *Engine) LogTail() string { return tail(filepath.Join(e.Dir, "dockerd.log")) }

func tail(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 10 {
		lines = lines[len(lines)-10:]
	}
	return strings.Join(lines, "\n")
}

// stopEngines removes the containers of every engine a lab made with these
// options runs, even one started by another process (vxswitch lab up),
// and stops the engines; Down then kills whatever is left.
func stopEngines(opt Options) {
	socks, _ := filepath.Glob(filepath.Join(opt.StateDir, "data", "docker-*", "docker.sock"))
	for _, sock := range socks {
		e := &Engine{Dir: filepath.Dir(sock), Socket: sock}
		e.removeContainers()
		b, err := os.ReadFile(filepath.Join(e.Dir, "dockerd.pid"))
		if err != nil {
			continue
		}
		var pid int
		if _, err := fmt.Sscan(string(b), &pid); err != nil || pid <= 0 {
			continue
		}
		syscall.Kill(pid, syscall.SIGTERM)
		for i := 0; i < 150 && syscall.Kill(pid, 0) == nil; i++ {
			time.Sleep(100 * time.Millisecond)
		}
	}
}
