"""The Debian package, end to end (README "Install"; debian/, dist/tlsgate.service).

In a copy of the source tree (the checkout's files, without build directories: building in
place would leave artefacts in it), `dpkg-buildpackage -us -uc -b` must build the package;
`lintian` must report no error on it. Then, as on an operator's machine:

  * `apt-get install ./tlsgate_*.deb` makes the system user and group tlsgate, whose home
    /var/lib/tlsgate is the store's directory (mode 0700, owned by tlsgate), and installs
    /usr/bin/tlsgate, the unit (`systemd-analyze verify` accepts it where systemd is
    installed) and /etc/tlsgate/tlsgate.conf as a conffile;
  * the service runs: with systemd as PID 1 through systemctl, else the unit's ExecStart
    line as the unit's User and Group (this machine may be a container); the configuration
    file gives it a free port; `curl -k https://127.0.0.1:PORT/healthz` answers, a reload
    (SIGHUP) is survived, it stops on SIGTERM with status 0; `tlsgate serve` without
    --config reads that file too;
  * `dpkg -r` keeps the store (and the user and the conffile), and installing again finds
    them; `dpkg -P` removes the store,
    the user, the group and the configuration file.

Needs root (it installs a package); skipped otherwise, and when a tlsgate package is
installed here already, or the user tlsgate, /var/lib/tlsgate or /etc/tlsgate/tlsgate.conf
exist (make install and a service set up by hand): the purge would remove an operator's.
"""
import grp
import os
import pwd
import re
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "interop"))
import tglib  # noqa: E402
from tglib import ROOT  # noqa: E402

UNIT = "/lib/systemd/system/tlsgate.service"
CONF = "/etc/tlsgate/tlsgate.conf"
STORE = "/var/lib/tlsgate"


def run(*cmd, check=True, timeout=120, **kw):
    kw.setdefault("stdin", subprocess.DEVNULL)  # dpkg never waits for an answer
    p = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {p.returncode}:\n{p.stdout[-3000:]}\n"
                             f"{p.stderr[-3000:]}")
    return p


def installed():
    p = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "tlsgate"], capture_output=True,
                       text=True)
    return p.returncode == 0 and "installed" in p.stdout and "not-installed" not in p.stdout


def user_exists():
    try:
        pwd.getpwnam("tlsgate")
        return True
    except KeyError:
        return False


def systemd_runs():
    return os.path.isdir("/run/systemd/system")


def copy_tree(dst):
    """The checkout's files (tracked, and new ones not ignored) copied to dst."""
    if os.path.isdir(os.path.join(ROOT, ".git")) or os.path.isfile(os.path.join(ROOT, ".git")):
        files = run("git", "-C", ROOT, "ls-files", "-co", "--exclude-standard", "-z").stdout
        for rel in filter(None, files.split("\0")):
            src = os.path.join(ROOT, rel)
            if not os.path.lexists(src):  # deleted in the work tree
                continue
            os.makedirs(os.path.dirname(os.path.join(dst, rel)), exist_ok=True)
            shutil.copy2(src, os.path.join(dst, rel), follow_symlinks=False)
    else:
        shutil.copytree(ROOT, dst, symlinks=True, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("build", "build-*", "var", "node_modules",
                                                      ".git"))


@unittest.skipUnless(os.geteuid() == 0, "installs a Debian package: needs root")
class TestPackage(unittest.TestCase):
    def setUp(self):
        if installed():
            self.skipTest("a tlsgate package is installed here already; this test installs "
                          "and purges its own (dpkg -P tlsgate first)")
        # a purge deletes the store, the user and the configuration file: never an operator's
        # (make install and a service set up by hand)
        for what, there in (("the user tlsgate", user_exists()), (STORE, os.path.exists(STORE)),
                            (CONF, os.path.exists(CONF))):
            if there:
                self.skipTest(f"{what} exists here already, and purging the test's package "
                              f"would remove it")
        self.dir = tempfile.mkdtemp(prefix="tg-pkg-")
        self.proc = None
        self.t0 = time.monotonic()

    def tearDown(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if systemd_runs() and installed():
            subprocess.run(["systemctl", "stop", "tlsgate"], capture_output=True, timeout=60)
        if installed() or os.path.exists(CONF):
            subprocess.run(["dpkg", "-P", "tlsgate"], capture_output=True, timeout=120)
        shutil.rmtree(self.dir, ignore_errors=True)
        sys.stderr.write(f"[{time.monotonic() - self.t0:.1f} s] ")

    def log(self, what):
        sys.stderr.write(f"({what} at {time.monotonic() - self.t0:.1f} s) ")

    # ---- build ----

    def build(self):
        src = os.path.join(self.dir, "tlsgate")
        os.makedirs(src)
        copy_tree(src)
        env = dict(os.environ, DEB_BUILD_OPTIONS="parallel=2 nocheck", LC_ALL="C.UTF-8")
        for k in ("TLSGATE_HOME", "TLSGATE_BIN", "MAKEFLAGS", "MFLAGS", "MAKELEVEL"):
            env.pop(k, None)
        p = run("dpkg-buildpackage", "-us", "-uc", "-b", cwd=src, env=env, check=False,
                timeout=900)
        self.assertEqual(p.returncode, 0, f"dpkg-buildpackage failed:\n{p.stdout[-4000:]}\n"
                                          f"{p.stderr[-4000:]}")
        debs = [f for f in os.listdir(self.dir) if re.fullmatch(r"tlsgate_.*_[a-z0-9]+\.deb", f)]
        self.assertEqual(len(debs), 1, os.listdir(self.dir))
        self.assertTrue(debs[0].startswith("tlsgate_0.1.0-1_"), debs)
        return os.path.join(self.dir, debs[0])

    def lintian(self, deb):
        p = run("lintian", "--no-cfg", deb, check=False, timeout=300)
        errors = [ln for ln in (p.stdout + p.stderr).splitlines() if ln.startswith("E:")]
        self.assertEqual(errors, [], f"lintian errors:\n{p.stdout}\n{p.stderr}")
        self.assertNotIn(p.returncode, (2,), f"lintian failed to run: {p.stderr}")

    # ---- the installed package ----

    def check_installed(self):
        self.assertTrue(os.access("/usr/bin/tlsgate", os.X_OK))
        pw = pwd.getpwnam("tlsgate")
        gr = grp.getgrnam("tlsgate")
        self.assertEqual(pw.pw_gid, gr.gr_gid, "the user's group is tlsgate")
        self.assertEqual(pw.pw_dir, STORE)
        self.assertLess(pw.pw_uid, 1000, "not a system user")
        self.assertIn(pw.pw_shell, ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false"))
        st = os.stat(STORE)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o700, oct(st.st_mode))
        self.assertEqual((st.st_uid, st.st_gid), (pw.pw_uid, gr.gr_gid))
        self.assertEqual(os.listdir(STORE), [], "postinst initialised more than the directory")
        conffiles = run("dpkg-query", "-W", "-f=${Conffiles}", "tlsgate").stdout
        self.assertIn(CONF, conffiles)
        with open(UNIT) as f:
            unit = f.read()
        for line in ("User=tlsgate", "Group=tlsgate", "StateDirectory=tlsgate",
                     "StateDirectoryMode=0700", "ProtectSystem=strict", "NoNewPrivileges=yes",
                     "ExecReload=/bin/kill -HUP $MAINPID",
                     "ExecStart=/usr/bin/tlsgate --home /var/lib/tlsgate serve --config "
                     "/etc/tlsgate/tlsgate.conf"):
            self.assertIn(line + "\n", unit)
        self.assertRegex(unit, r"CapabilityBoundingSet=CAP_NET_BIND_SERVICE CAP_NET_ADMIN")
        if shutil.which("systemd-analyze"):
            p = run("systemd-analyze", "verify", UNIT, check=False, timeout=60)
            self.assertEqual(p.returncode, 0, f"systemd-analyze verify: {p.stdout}{p.stderr}")
            self.assertNotIn("tlsgate.service:", p.stderr, p.stderr)
        return unit

    def give_port(self):
        """A free port for the front end and one for the admin listener, in the conffile
        (the ports below 1024 and 8443/9443 may be taken or privileged here)."""
        port, admin = tglib.free_port(), tglib.free_port()
        with open(CONF, "a") as f:
            f.write(f"\n# test_package\nlisten = 127.0.0.1:{port}\nadmin = 127.0.0.1:{admin}\n")
        return port

    def healthz(self, port, limit=20):
        deadline = time.monotonic() + limit
        last = None
        while time.monotonic() < deadline:
            last = subprocess.run(["curl", "-sk", "--max-time", "3",
                                   f"https://127.0.0.1:{port}/healthz"],
                                  capture_output=True, text=True)
            if last.returncode == 0 and last.stdout == "ok\n":
                return
            if self.proc is not None and self.proc.poll() is not None:
                break
            time.sleep(0.2)
        err = self.proc_err() if self.proc is not None else ""
        self.fail(f"no answer from https://127.0.0.1:{port}/healthz: {last}; serve: {err}")

    def proc_err(self):
        with open(os.path.join(self.dir, "serve.err"), errors="replace") as f:
            return f.read()

    def run_service(self, unit, port):
        if systemd_runs():
            run("systemctl", "daemon-reload")
            run("systemctl", "restart", "tlsgate", timeout=60)
            self.healthz(port)
            run("systemctl", "reload", "tlsgate", timeout=60)
            time.sleep(1)
            self.assertEqual(run("systemctl", "is-active", "tlsgate", check=False).stdout.strip(),
                             "active")
            self.healthz(port)
            run("systemctl", "stop", "tlsgate", timeout=60)
            return
        # no systemd here: the unit's ExecStart as its User and Group, in / with its UMask
        m = re.search(r"^ExecStart=(.+)$", unit, re.M)
        argv = shlex.split(m.group(1))
        user = re.search(r"^User=(\S+)$", unit, re.M).group(1)
        group = re.search(r"^Group=(\S+)$", unit, re.M).group(1)
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
        with open(os.path.join(self.dir, "serve.err"), "wb") as errf:
            self.proc = subprocess.Popen(
                ["setpriv", f"--reuid={user}", f"--regid={group}", "--init-groups",
                 "--no-new-privs", "--", *argv],
                stdin=subprocess.DEVNULL, stdout=errf, stderr=errf, cwd="/", env=env,
                preexec_fn=lambda: os.umask(0o077))
        self.healthz(port)
        self.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "SIGHUP" not in self.proc_err() and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertIn("SIGHUP", self.proc_err(), "no reload logged after SIGHUP")
        self.assertIsNone(self.proc.poll(), f"serve exited on SIGHUP: {self.proc_err()}")
        self.healthz(port)
        self.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.proc.wait(30), 0, self.proc_err())
        self.assertNotIn("error", self.proc_err().lower().replace("errors", ""),
                         self.proc_err())

    def default_conf(self, port):
        """Without --config, serve reads /etc/tlsgate/tlsgate.conf (the path compiled in)."""
        home = os.path.join(self.dir, "home")
        with open(os.path.join(self.dir, "serve.err"), "wb") as errf:
            self.proc = subprocess.Popen(["/usr/bin/tlsgate", "--home", home, "serve", "--quiet"],
                                         stdin=subprocess.DEVNULL, stdout=errf, stderr=errf,
                                         cwd=self.dir)
        self.healthz(port)
        self.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.proc.wait(30), 0, self.proc_err())

    def test_package(self):
        deb = self.build()
        self.log("built")
        self.lintian(deb)
        self.log("lintian")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        run("apt-get", "install", "-y", "-q", "--no-install-recommends", deb, env=env,
            timeout=300)
        unit = self.check_installed()
        port = self.give_port()
        self.run_service(unit, port)
        self.default_conf(port)
        self.log("served")
        # the store was made by the service, as its user
        uid = pwd.getpwnam("tlsgate").pw_uid
        self.assertIn("store.db", os.listdir(STORE))
        self.assertEqual(os.stat(os.path.join(STORE, "store.db")).st_uid, uid)
        # remove keeps the store, the user and the configuration file
        run("dpkg", "-r", "tlsgate", timeout=120)
        self.assertFalse(os.path.exists("/usr/bin/tlsgate"))
        self.assertIn("store.db", os.listdir(STORE), "dpkg -r removed the store")
        self.assertEqual(pwd.getpwnam("tlsgate").pw_uid, uid)
        self.assertTrue(os.path.exists(CONF), "dpkg -r removed the conffile")
        # installing again finds them as they were
        run("apt-get", "install", "-y", "-q", "--no-install-recommends", deb, env=env,
            timeout=300)
        self.assertIn("store.db", os.listdir(STORE))
        st = os.stat(STORE)
        self.assertEqual((stat.S_IMODE(st.st_mode), st.st_uid), (0o700, uid))
        with open(CONF) as f:
            self.assertIn("# test_package", f.read(), "the edited conffile was replaced")
        # purge removes them
        run("dpkg", "-P", "tlsgate", timeout=120)
        self.assertFalse(os.path.exists(STORE), "dpkg -P kept the store")
        self.assertFalse(os.path.exists(CONF), "dpkg -P kept the configuration file")
        with self.assertRaises(KeyError):
            pwd.getpwnam("tlsgate")
        with self.assertRaises(KeyError):
            grp.getgrnam("tlsgate")


if __name__ == "__main__":
    unittest.main()
