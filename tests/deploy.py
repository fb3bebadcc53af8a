"""deploy.py - the deployment check (run by tests/deploy.sh in `make test`).

No Docker engine, Render or systemd runs here, so this checks what can be
checked on the machine itself, reading every command from the deployment
files (render.yaml, Procfile, Dockerfile, .dockerignore,
deploy/lode.service) rather than from a copy:

- render.yaml parses; a web service built from the Dockerfile with the
  health check /health; its env vars are ones `lode serve --help` knows,
  and docs/deploy.md documents every one of those;
- the Procfile's web command is render.yaml's start command;
- the Dockerfile: Debian 12 stages; the build stage's RUN lines run here
  in the repository (the build context); every file its final stage copies
  exists afterwards; that stage runs as a non-root user with a
  HEALTHCHECK, and its runtime packages provide every shared library
  ./lode needs; nothing the build reads is in .dockerignore;
- the final stage is laid out in a temporary directory as the image would
  be (its COPY lines, its `install -d` lines; apt-get and useradd would
  change this machine and are only listed), and the image's CMD,
  render.yaml's start command (through a shell and exec'd without one)
  and the Procfile's command each start lode on $PORT and 0.0.0.0 there,
  as an unprivileged user when this runs as root: /health says healthy,
  the HEALTHCHECK command passes, `lode check` passes, a write without the
  API key is refused, and SIGTERM ends it with status 0;
- deploy/lode.service passes `systemd-analyze verify`, scores as hardened
  in `systemd-analyze security --offline`, and its ExecStartPre and
  ExecStart (with /opt/lode and /var/lib/lode moved into the temporary
  directory) seed the database once and serve.

Prints one line per failure and "N passed, N failed"; exits 1 on a failure.
"""
import fnmatch
import hashlib
import json
import os
import pwd
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import yaml

from checks import Checks

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LODE = os.path.join(ROOT, "lode")   # what deploy/build.sh builds
HEALTHY_WITHIN_S = 60
STOP_WITHIN_S = 20

CHECKS = Checks("deploy")
check = CHECKS.check


def read(path):
    with open(os.path.join(ROOT, path)) as f:
        return f.read()


# ---- the files ----------------------------------------------------------

def lode_env_vars():
    """The environment variables `lode serve --help` lists."""
    out = subprocess.run([LODE, "serve", "--help"], capture_output=True,
                         text=True, check=True).stdout
    names = set()
    for m in re.finditer(r"\(\$([A-Z0-9_]+)(?:, \$([A-Z0-9_]+))?\)", out):
        names.update(n for n in m.groups() if n)
    return names


def dockerfile_stages(text):
    """[(name, [(INSTRUCTION, args)])] of a Dockerfile."""
    text = re.sub(r"\\\n", " ", "\n".join(
        line for line in text.splitlines() if not line.lstrip().startswith("#")))
    stages = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        instr, _, args = line.partition(" ")
        instr, args = instr.upper(), " ".join(args.split())
        if instr == "FROM":
            m = re.match(r"(\S+)(?: AS (\S+))?$", args, re.I)
            stages.append((m.group(2) or str(len(stages)), [(instr, args)]))
        else:
            stages[-1][1].append((instr, args))
    return stages


def copy_args(args):
    """(flags, sources, dest) of a COPY line."""
    words = shlex.split(args)
    flags = {}
    while words and words[0].startswith("--"):
        k, _, v = words.pop(0)[2:].partition("=")
        flags[k] = v
    return flags, words[:-1], words[-1]


def exec_or_shell(args):
    """argv of a CMD in exec form, or ["/bin/sh", "-c", args]."""
    if args.startswith("["):
        return json.loads(args)
    return ["/bin/sh", "-c", args]


def dockerignored(path, patterns):
    """Would .dockerignore leave `path` (relative) out of the context?"""
    parts = path.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    out = False
    for pat in patterns:
        neg = pat.startswith("!")
        pat = pat.lstrip("!").strip("/")
        hit = any(fnmatch.fnmatchcase(p, pat) for p in prefixes)
        if pat.startswith("**/"):
            hit = hit or any(fnmatch.fnmatchcase(c, pat[3:]) for c in parts)
        if hit:
            out = not neg
    return out


def needed_packages(binary):
    """Debian package of each shared library the binary names (NEEDED)."""
    out = subprocess.run(["readelf", "-d", binary], capture_output=True,
                         text=True, check=True).stdout
    pkgs = {}
    for lib in re.findall(r"\(NEEDED\)\s+Shared library: \[([^]]+)\]", out):
        q = subprocess.run(["dpkg", "-S", "*/" + lib], capture_output=True,
                           text=True)
        owners = {line.split(":")[0] for line in q.stdout.splitlines()
                  if line.strip()}
        pkgs[lib] = owners
    return pkgs


# ---- servers ------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None, headers=None):
    req = urllib.request.Request(url, method=method, data=body,
                                 headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class Server:
    """A command started in its own process group, its output in a file."""

    def __init__(self, label, argv, cwd, env, run_as, tmp):
        self.label, self.url = label, f"http://127.0.0.1:{env['PORT']}"
        self.log = os.path.join(tmp, re.sub(r"\W+", "_", label) + ".log")
        self.proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
            stdout=open(self.log, "w"), stderr=subprocess.STDOUT,
            start_new_session=True, **run_as)

    def output(self):
        with open(self.log) as f:
            return f.read()[-2000:]

    def wait_healthy(self):
        end = time.monotonic() + HEALTHY_WITHIN_S
        last = None
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                return f"exited with {self.proc.returncode}: {self.output()}"
            try:
                code, body = http("GET", self.url + "/health")
                last = (code, body[:200])
                if code == 200 and json.loads(body)["status"] == "healthy":
                    return None
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        return f"not healthy within {HEALTHY_WITHIN_S} s (last {last}): " \
               f"{self.output()}"

    def stop(self):
        """SIGTERM to the process started, as `docker stop` sends it to
        PID 1 and systemd to the main process; the exit status (None: it
        had to be killed)."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(STOP_WITHIN_S)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            return None


def serve_and_check(label, argv, cwd, env, run_as, tmp, healthcheck=None):
    """Start, wait for healthy, run the checks, stop."""
    s = Server(label, argv, cwd, env, run_as, tmp)
    try:
        why = s.wait_healthy()
        if not check(f"{label}: /health healthy", why is None, why):
            return
        exe = os.readlink(f"/proc/{s.proc.pid}/exe")
        check(f"{label}: the process started is lode itself (gets SIGTERM)",
              os.path.basename(exe) == "lode", exe)
        if healthcheck:
            r = subprocess.run(healthcheck, env=env, cwd=cwd,
                               capture_output=True, text=True, timeout=30)
            check(f"{label}: HEALTHCHECK passes", r.returncode == 0,
                  r.stdout + r.stderr)
        key = env.get("LODE_API_KEY", "")
        r = subprocess.run([LODE, "check", s.url, "--api-key", key],
                           capture_output=True, text=True, timeout=120)
        check(f"{label}: lode check", r.returncode == 0, r.stdout + r.stderr)
        body = json.dumps({"name": "deploy-check"}).encode()
        hdr = {"Content-Type": "application/json"}
        code, _ = http("POST", s.url + "/collections", body, hdr)
        check(f"{label}: a write without the API key is refused", code == 401,
              f"HTTP {code}")
        hdr["Authorization"] = "Bearer " + key
        code, _ = http("POST", s.url + "/collections", body, hdr)
        check(f"{label}: a write with the API key passes", code in (200, 201),
              f"HTTP {code}")
    finally:
        rc = s.stop()
        check(f"{label}: SIGTERM ends it with status 0", rc == 0,
              f"status {rc}: {s.output()}")


def clean_env(*dicts, **extra):
    """A container's environment: PATH and what the files set (later
    values win)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/"}
    for d in dicts + (extra,):
        env.update({k: str(v) for k, v in d.items()})
    return env


# ---- the checks ---------------------------------------------------------

def check_render_and_procfile(known):
    render = yaml.safe_load(read("render.yaml"))
    svc = render["services"][0]
    check("render.yaml: a web service", svc.get("type") == "web", svc)
    check("render.yaml: built from the Dockerfile",
          svc.get("runtime") == "docker" and
          os.path.isfile(os.path.join(ROOT, svc.get("dockerfilePath", ""))),
          svc.get("dockerfilePath"))
    check("render.yaml: health check /health",
          svc.get("healthCheckPath") == "/health")
    keys = [e["key"] for e in svc.get("envVars", [])]
    unknown = [k for k in keys if k not in known]
    check("render.yaml: env vars known to lode serve --help", not unknown,
          unknown)
    docs = read("docs/deploy.md")
    undocumented = sorted(k for k in known if not re.search(
        r"\b" + re.escape(k) + r"\b", docs))
    check("docs/deploy.md documents every env var of lode serve",
          not undocumented, undocumented)

    start = svc["dockerCommand"]
    words = shlex.split(start)
    check("render.yaml: start command is sh -c 'exec ...'",
          words[:2] == ["sh", "-c"] and words[2].startswith("exec "), start)
    inner = shlex.split(words[2])[1:]
    check("render.yaml: start command on 0.0.0.0 and $PORT",
          "0.0.0.0" in inner and "$PORT" in inner, inner)

    procs = dict(line.split(":", 1) for line in read("Procfile").splitlines()
                 if line.strip() and not line.startswith("#"))
    web = procs.get("web", "").strip()
    check("Procfile: web is render.yaml's start command", web == words[2],
          f"{web!r} vs {words[2]!r}")
    return svc, web


def check_dockerfile():
    stages = dockerfile_stages(read("Dockerfile"))
    check("Dockerfile: multi-stage", len(stages) >= 2, len(stages))
    for name, instrs in stages:
        check(f"Dockerfile: stage {name} on Debian 12",
              re.match(r"debian:12(\b|-)", instrs[0][1]), instrs[0][1])
    patterns = [line.strip() for line in read(".dockerignore").splitlines()
                if line.strip() and not line.startswith("#")]
    for p in ("models", "build", ".git", "data/lode.db", ".venv-test"):
        check(f".dockerignore leaves out {p}", dockerignored(p, patterns))
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT,
                             capture_output=True, text=True).stdout.split()
    needed = [f for f in tracked if re.match(
        r"(Makefile$|src/|scripts/|deploy/|data/sample/)", f)]
    left_out = [f for f in needed if dockerignored(f, patterns)]
    check("the build's files are in the Docker context",
          needed and not left_out, left_out or "git ls-files found nothing")

    build_name, build = stages[0]
    final = stages[-1][1]
    workdir = "/"
    for instr, args in build:
        if instr == "WORKDIR":
            workdir = args
        elif instr == "COPY":
            flags, srcs, _ = copy_args(args)
            for src in srcs:
                check(f"Dockerfile: COPY {src} exists",
                      os.path.exists(os.path.join(ROOT, src)))
    check("Dockerfile: the build stage copies the whole context",
          ("COPY", ". .") in build, build)
    users = [a for i, a in final if i == "USER"]
    check("Dockerfile: the image runs as a non-root user",
          users and users[-1] not in ("root", "0"), users)
    check("Dockerfile: HEALTHCHECK", any(i == "HEALTHCHECK" for i, _ in final))
    check("Dockerfile: CMD", any(i == "CMD" for i, _ in final))

    runtime = " ".join(a for i, a in final if i == "RUN")
    for lib, owners in needed_packages(LODE).items():
        ok = bool(owners & (set(runtime.split()) | {"libc6"}))
        check(f"Dockerfile: a runtime package provides {lib}", ok,
              f"{lib} is in {sorted(owners)}")
    return stages, build_name, workdir


def plain_make_env():
    """The environment without an enclosing `make test SANITIZE=1`'s
    settings (make exports its command-line variables to recipes too), so
    ./lode is the plain build an image ships."""
    return {k: v for k, v in os.environ.items()
            if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES",
                         "SANITIZE", "DEBUG")}


def run_build_stage(build, workdir):
    """The build stage's RUN lines, in the repository (the context)."""
    check("Dockerfile: the build stage's WORKDIR holds the context",
          workdir.startswith("/"), workdir)
    env = plain_make_env()
    for instr, args in build:
        if instr != "RUN":
            continue
        r = subprocess.run(exec_or_shell(args), cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=3600)
        check(f"Dockerfile: RUN {args}", r.returncode == 0,
              (r.stdout + r.stderr)[-3000:])


def lay_out_image(stages, build_name, build_workdir, tmp, run_as_user):
    """The final stage as a directory tree under tmp/image; returns the
    (workdir, env, cmd, healthcheck) of the image."""
    image = os.path.join(tmp, "image")
    os.makedirs(image)
    where = lambda p: os.path.join(image, p.lstrip("/"))
    workdir, env, cmd, healthcheck = "/", {}, None, None
    for instr, args in stages[-1][1][1:]:
        if instr == "WORKDIR":
            workdir = os.path.join(workdir, args)
            os.makedirs(where(workdir), exist_ok=True)
        elif instr == "ENV":
            env.update(dict(w.split("=", 1) for w in shlex.split(args)))
        elif instr == "COPY":
            flags, srcs, dest = copy_args(args)
            check(f"Dockerfile: COPY --from the build stage ({args})",
                  flags.get("from") == build_name, flags)
            for src in srcs:
                rel = os.path.relpath(src, build_workdir)
                have = os.path.join(ROOT, rel)
                if not check(f"Dockerfile: the build made {src}",
                             os.path.isfile(have)):
                    continue
                target = where(os.path.join(workdir, dest))
                if dest.endswith("/"):
                    target = os.path.join(target, os.path.basename(src))
                os.makedirs(os.path.dirname(target), exist_ok=True)
                shutil.copy2(have, target)
                if "chown" in flags and run_as_user:
                    shutil.chown(target, run_as_user.pw_uid,
                                 run_as_user.pw_gid)
        elif instr == "RUN":
            for step in (s.strip() for s in args.split("&&")):
                m = re.match(r"install -d -o \S+ -g \S+ (.+)$", step)
                if m:
                    for d in m.group(1).split():
                        os.makedirs(where(d), exist_ok=True)
                        if run_as_user:
                            shutil.chown(where(d), run_as_user.pw_uid,
                                         run_as_user.pw_gid)
                else:
                    print(f"deploy: not run here (would change this "
                          f"machine): {step}", file=sys.stderr)
        elif instr == "CMD":
            cmd = exec_or_shell(args)
        elif instr == "HEALTHCHECK":
            healthcheck = exec_or_shell(re.sub(r"^(--\S+\s+)*CMD\s+", "",
                                               args))
    # the image's tree is root's and readable; only --chown'd paths are not
    for d, _, _ in os.walk(image):
        os.chmod(d, os.stat(d).st_mode | 0o755)
    return where(workdir), env, cmd, healthcheck


def check_systemd(tmp, app, run_as, run_as_user):
    unit = read("deploy/lode.service")
    for opt in ("ProtectSystem=strict", "NoNewPrivileges=yes",
                "PrivateTmp=yes", "MemoryMax=", "ProtectHome=yes",
                "CapabilityBoundingSet=\n"):
        check(f"lode.service: {opt.strip()}", opt in unit)
    state = os.path.join(tmp, "state")
    os.makedirs(state)
    if run_as_user:
        shutil.chown(state, run_as_user.pw_uid, run_as_user.pw_gid)
    moved = unit.replace("/opt/lode", app).replace("/var/lib/lode", state)
    path = os.path.join(tmp, "lode.service")
    with open(path, "w") as f:
        f.write(moved)
    tool = shutil.which("systemd-analyze")
    if check("systemd-analyze is installed (scripts/deps.sh)", tool):
        r = subprocess.run([tool, "verify", path], capture_output=True,
                           text=True)
        check("lode.service: systemd-analyze verify, no warning",
              r.returncode == 0 and not (r.stdout + r.stderr).strip(),
              r.stdout + r.stderr)
        r = subprocess.run([tool, "security", "--offline=true", path],
                           capture_output=True, text=True)
        m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", r.stdout)
        check("lode.service: exposure below 2.0 (systemd-analyze security)",
              m and float(m.group(1)) < 2.0, m and m.group(0) or r.stderr)

    service = {}
    section = None
    for line in moved.splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and line[0] != "#":
            k, _, v = line.partition("=")
            service.setdefault(k, []).append(v)
    env = clean_env(dict(w.split("=", 1) for v in service["Environment"]
                         for w in shlex.split(v)))
    env["STATE_DIRECTORY"] = state
    env["LODE_API_KEY"] = secrets.token_hex(16)   # as from EnvironmentFile
    env["PORT"] = str(free_port())
    cwd = service["WorkingDirectory"][0]
    # systemd's own unquoting: a prefix of flags, "$$" for a literal "$"
    pre = shlex.split(service["ExecStartPre"][0].lstrip("-+!@:")
                      .replace("$$", "$"))
    for attempt in (1, 2):
        r = subprocess.run(pre, cwd=cwd, env=env, capture_output=True,
                           text=True, **run_as)
        check(f"lode.service: ExecStartPre (run {attempt})",
              r.returncode == 0, r.stdout + r.stderr)
        db = os.path.join(state, "lode.db")
        if attempt == 1:
            check("lode.service: the first start seeds the database",
                  os.path.isfile(db))
            serve_and_check("lode.service ExecStart",
                            shlex.split(service["ExecStart"][0]), cwd, env,
                            run_as, tmp)
            digest = hashlib.sha256(open(db, "rb").read()).hexdigest()
        else:
            check("lode.service: a restart keeps the database",
                  hashlib.sha256(open(db, "rb").read()).hexdigest() == digest)


def main():
    # ./lode, which everything below reads or runs (make test builds only
    # build/lode); the build stage below then finds it up to date
    subprocess.run(["make", "lode"], cwd=ROOT, env=plain_make_env(),
                   check=True, stdout=subprocess.DEVNULL)
    known = lode_env_vars()
    check("lode serve --help lists PORT and HOST", {"PORT", "HOST"} <= known,
          known)
    svc, procfile_web = check_render_and_procfile(known)
    stages, build_name, build_workdir = check_dockerfile()
    run_build_stage(stages[0][1], build_workdir)

    run_as_user, run_as = None, {}
    if os.geteuid() == 0:
        # the image runs as a user of its own: here, nobody
        run_as_user = pwd.getpwnam("nobody")
        run_as = {"user": run_as_user.pw_uid, "group": run_as_user.pw_gid,
                  "extra_groups": []}
    tmp = tempfile.mkdtemp(prefix="lode-deploy.")
    os.chmod(tmp, 0o755)
    try:
        app, image_env, cmd, healthcheck = lay_out_image(
            stages, build_name, build_workdir, tmp, run_as_user)
        check("Dockerfile: ENV HOST=0.0.0.0 and a PORT",
              image_env.get("HOST") == "0.0.0.0" and "PORT" in image_env,
              image_env)
        key = secrets.token_hex(16)

        env = clean_env(image_env, PORT=free_port(), LODE_API_KEY=key)
        serve_and_check("the image's CMD", cmd, app, env, run_as, tmp,
                        healthcheck)

        render_env = dict(image_env)
        for e in svc.get("envVars", []):
            if "value" in e:
                render_env[e["key"]] = e["value"]
            elif e.get("generateValue"):
                render_env[e["key"]] = secrets.token_hex(16)
        start = svc["dockerCommand"]
        env = clean_env(render_env, PORT=free_port())
        serve_and_check("render.yaml start command, through a shell",
                        ["/bin/bash", "-c", start], app, env, run_as, tmp)
        env = clean_env(render_env, PORT=free_port())
        serve_and_check("render.yaml start command, exec'd",
                        shlex.split(start), app, env, run_as, tmp)

        # without a key, a server on 0.0.0.0 takes no write at all
        env = clean_env(image_env, PORT=free_port())
        s = Server("the image without LODE_API_KEY", cmd, app, env, run_as,
                   tmp)
        try:
            why = s.wait_healthy()
            if check("the image without LODE_API_KEY: healthy", why is None,
                     why):
                code, _ = http("POST", s.url + "/collections",
                               b'{"name": "x"}',
                               {"Content-Type": "application/json"})
                check("the image without LODE_API_KEY: writes refused (403)",
                      code == 403, f"HTTP {code}")
        finally:
            check("the image without LODE_API_KEY: SIGTERM, status 0",
                  s.stop() == 0, s.output())

        env = clean_env(PORT=free_port(), LODE_API_KEY=key)
        serve_and_check("Procfile web", ["/bin/sh", "-c", procfile_web], app,
                        env, run_as, tmp)

        check_systemd(tmp, app, run_as, run_as_user)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return CHECKS.summary()


if __name__ == "__main__":
    sys.exit(main())
