"""Help, the man page and bash completion, generated from the tables the parser uses
(src/cli/help.c; issue 14, item 2).

  * `tlsgate help --json` is walked: for every command and subcommand, `CMD SUB --help`,
    `CMD SUB -h` and `help CMD SUB` exit 0 and name every option listed, and a group's help
    names every subcommand;
  * the parser agrees with the table: each listed option (and the global --json, --home)
    is not refused as unknown by that subcommand, and an option another group has is
    refused with exit status 2 and the parser's unknown-option sentence (on a store that
    cannot be created: nothing runs past the parser; serve and enroll-ca serve are never
    run, only asked for help);
  * each example begins with its subcommand's words and uses only options it accepts;
  * a mistyped command or subcommand: exit 2 and "did you mean";
  * the man page renders without warnings (MANWIDTH=80 man --warnings -l);
  * the bash completion script parses (bash -n), completes `tlsgate ce` to cert, and an
    option's value from its choices (--format p: pem, p7b, ...).
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import tglib

BIN = os.path.abspath(tglib.BIN)
UNKNOWN = "is not known here"  # opts.c: "%s: option '%s' is not known here"
# never run for real: they start servers
SERVERS = {"serve", "enroll-ca serve"}


def leaves(node):
    if "subcommands" in node:
        for s in node["subcommands"]:
            yield from leaves(s)
    else:
        yield node


def groups(node):
    if "subcommands" in node:
        yield node
        for s in node["subcommands"]:
            yield from groups(s)


class HelpCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="tg-help-")
        # a store that cannot be created (its parent is a file): nothing gets past opening it
        blocker = os.path.join(cls.tmp, "file")
        open(blocker, "w").close()
        cls.env = dict(os.environ, TLSGATE_HOME=os.path.join(blocker, "store"))
        cls.env.pop("TLSGATE_PASSWORD", None)
        r = cls.run_bin("help", "--json")
        assert r.returncode == 0, r.stderr
        cls.doc = json.loads(r.stdout)
        cls.leaves = [l for c in cls.doc["commands"] for l in leaves(c)]
        cls.groups = [g for c in cls.doc["commands"] for g in groups(c)]
        cls.all_opts = sorted({o["name"] for l in cls.leaves for o in l["options"]})

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def run_bin(cls, *args):
        return subprocess.run([BIN, *args], capture_output=True, text=True, env=cls.env,
                              stdin=subprocess.DEVNULL, timeout=30)

    def test_tables_are_complete(self):
        self.assertGreater(len(self.leaves), 80)
        names = [c["name"] for c in self.doc["commands"]]
        for want in ("init", "cert", "request", "ca", "truststore", "verify", "proxy", "policy",
                     "category", "serve", "config", "acme", "identity", "enroll-ca", "user",
                     "group", "audit", "refresh", "factory-reset"):
            self.assertIn(want, names)
        for l in self.leaves:
            self.assertTrue(l["summary"], l["path"])
            self.assertTrue(l["example"], l["path"])
            for o in l["options"]:
                self.assertTrue(o["description"], (l["path"], o["name"]))
        self.assertEqual({o["name"] for o in self.doc["global_options"]}, {"json", "home"})

    def test_top_help_and_version(self):
        for args in (["--help"], ["-h"], ["help"]):
            r = self.run_bin(*args)
            self.assertEqual(r.returncode, 0, args)
            for c in self.doc["commands"]:
                self.assertIn(c["name"], r.stdout)
        for args in (["--version"], ["version"]):
            r = self.run_bin(*args)
            self.assertEqual(r.returncode, 0)
            self.assertRegex(r.stdout, r"^tlsgate \S+\n$")

    def test_group_help_names_subcommands(self):
        for g in self.groups:
            words = g["path"].split()
            for args in (words + ["--help"], words + ["-h"], ["help"] + words):
                r = self.run_bin(*args)
                self.assertEqual(r.returncode, 0, (args, r.stderr))
                for s in g["subcommands"]:
                    self.assertRegex(r.stdout, r"(?m)^  %s\b" % re.escape(s["name"]), args)

    def test_leaf_help_names_every_option(self):
        for l in self.leaves:
            words = l["path"].split()
            for args in (words + ["--help"], words + ["-h"], ["help"] + words,
                         words + ["ARG", "--help"]):
                r = self.run_bin(*args)
                self.assertEqual(r.returncode, 0, (args, r.stderr))
                self.assertIn("usage: tlsgate " + l["path"], r.stdout, args)
                for o in l["options"]:
                    self.assertRegex(r.stdout, r"--%s\b" % re.escape(o["name"]), args)
                self.assertIn("tlsgate " + l["example"].split()[0], r.stdout)

    def test_parser_agrees_with_table(self):
        for l in self.leaves:
            if l["path"] in SERVERS:
                continue
            words = l["path"].split()
            listed = {o["name"] for o in l["options"]}
            for o in l["options"] + self.doc["global_options"]:
                args = words + ["--" + o["name"]] + (["1"] if o["arg"] else [])
                if o["name"] == "home":
                    args[-1] = self.env["TLSGATE_HOME"]
                r = self.run_bin(*args)
                self.assertNotIn(UNKNOWN, r.stderr, args)
            # an option of another group, not a prefix of one this subcommand takes
            other = next(n for n in ("yes", "limit", "cn", "truststore", "none", "out")
                         if n not in listed and not any(x.startswith(n) for x in listed))
            r = self.run_bin(*words, "--" + other)
            self.assertEqual(r.returncode, 2, (l["path"], other, r.stderr))
            self.assertIn("option '--%s' %s" % (other, UNKNOWN), r.stderr, l["path"])

    def test_values_are_accepted(self):
        """An option's listed choices: the parser takes each (the command may fail later)."""
        seen = 0
        for l in self.leaves:
            if l["path"] in SERVERS:
                continue
            for o in l["options"]:
                for v in o.get("values", []):
                    r = self.run_bin(*l["path"].split(), "--" + o["name"], v)
                    self.assertNotIn(UNKNOWN, r.stderr)
                    self.assertNotIn("needs a value", r.stderr)
                    seen += 1
        self.assertGreater(seen, 20)

    def test_examples_parse(self):
        globals_ = {o["name"] for o in self.doc["global_options"]}
        for l in self.leaves:
            ex = l["example"].split()
            self.assertEqual(ex[:len(l["path"].split())], l["path"].split(), l["example"])
            listed = {o["name"] for o in l["options"]} | globals_
            for w in ex:
                if w.startswith("--"):
                    self.assertIn(w[2:].split("=")[0], listed, l["example"])

    def test_did_you_mean(self):
        r = self.run_bin("cret", "list")
        self.assertEqual(r.returncode, 2)
        self.assertIn("did you mean 'cert'", r.stderr)
        r = self.run_bin("cert", "lst")
        self.assertEqual(r.returncode, 2)
        self.assertIn("did you mean 'cert list'", r.stderr)
        r = self.run_bin("help", "polcy")
        self.assertEqual(r.returncode, 2)
        self.assertIn("did you mean 'policy'", r.stderr)
        r = self.run_bin("xyzzy")
        self.assertEqual(r.returncode, 2)
        self.assertNotIn("did you mean", r.stderr)

    @unittest.skipUnless(shutil.which("man"), "man-db is not installed (scripts/bootstrap.sh)")
    def test_man_page_renders_without_warnings(self):
        page = os.path.join(self.tmp, "tlsgate.1")
        with open(page, "w") as f:
            self.assertEqual(subprocess.run([BIN, "help", "--man"], stdout=f).returncode, 0)
        env = dict(os.environ, MANWIDTH="80")
        r = subprocess.run(["man", "--warnings", "-l", page], capture_output=True, text=True,
                           env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, "")
        for s in ("NAME", "SYNOPSIS", "COMMANDS", "EXIT STATUS", "ENVIRONMENT", "FILES",
                  "TLSGATE_HOME", "TLSGATE_PASSWORD", "SEE ALSO"):
            self.assertIn(s, r.stdout)
        for l in self.leaves:
            self.assertIn(l["path"], r.stdout)

    def test_bash_completion(self):
        script = os.path.join(self.tmp, "tlsgate.bash")
        with open(script, "w") as f:
            self.assertEqual(subprocess.run([BIN, "help", "--bash-completion"],
                                            stdout=f).returncode, 0)
        self.assertEqual(subprocess.run(["bash", "-n", script]).returncode, 0)

        def complete(*words):
            prog = ('source "$1"; shift; COMP_WORDS=(tlsgate "$@"); COMP_CWORD=$#; _tlsgate; '
                    'printf "%s\\n" "${COMPREPLY[@]}"')
            r = subprocess.run(["bash", "-c", prog, "x", script, *words], capture_output=True,
                               text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            return r.stdout.split()

        self.assertEqual(complete("ce"), ["cert"])
        self.assertIn("list", complete("--home", "/x", "cert", "l"))
        self.assertIn("create", complete("proxy", "client", ""))
        self.assertIn("--expiring", complete("cert", "list", "--"))
        self.assertIn("--cn", complete("cert", "create", "www", "--c"))
        # an option's choices, and nothing (files: complete -o default) for a file option
        self.assertEqual(complete("cert", "export", "www", "--format", "p"),
                         ["pem", "p7b", "p8", "pkcs1", "p12"])
        self.assertEqual(complete("serve", "--log", ""), ["stderr", "syslog", "both"])
        self.assertEqual(complete("cert", "import", "--key", ""), [])
        # as bash calls it: COMP_LINE, whose words bash would split at ':'
        prog = ('source "$1"; COMP_LINE="$2"; COMP_POINT=${#2}; COMP_WORDS=(); COMP_CWORD=0; '
                '_tlsgate; printf "%s\\n" "${COMPREPLY[@]}"')
        r = subprocess.run(["bash", "-c", prog, "x", script, "tlsgate cert create w --key rsa:3"],
                           capture_output=True, text=True)
        self.assertEqual(r.stdout.split(), ["3072"], r.stderr)


if __name__ == "__main__":
    unittest.main()
