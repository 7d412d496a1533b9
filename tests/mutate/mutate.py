#!/usr/bin/env python3
"""
mutate.py - mutation testing of pgbeacon's pure modules and of the
library's context and pool code (make mutate).

Plants one small bug (a mutant) at a time in a copy of a source file,
compiles that copy alone into a scratch directory under $BUILD/mutate,
links it into the test binary that covers the file (the object files of
$BUILD stand for the rest), runs the binary with a timeout and counts the
mutant killed when the binary fails (a failed check, a crash, a timeout).
The work tree is never written to.

Operators:
  ROR   a comparison replaced (<  <=  >  >=  ==  !=)
  LCR   && and || swapped
  CONST an integer constant one further from zero (-1 becomes 0)
  NEG   the condition of an if or while negated
  DEL   a one-line statement deleted
  RET   an error return swapped (true/false, 0/-1)

Mutants that do not compile are not counted.  Equivalent mutants (no
test can tell them from the original) are listed, with the reason, in
tests/mutate/equivalent.txt and excluded from the score.

Environment (all optional):
  MUTATE_FILES  files to mutate, separated by spaces or commas: paths
                (daemon/lsn.c), base names (lsn.c) or the groups "pure"
                and "lib"; default: all of them
  MUTATE_MAX    at most this many mutants per file, spread evenly over it
  MUTATE_OPS    only these operators (e.g. "ROR,LCR")
  MUTATE_LINES  only the mutants on these lines, "file:line" as printed
                (e.g. "ctx.c:350 db.c:550"; base names or paths), after
                MUTATE_MAX picked its sample: to run again the survivors
                of a run once tests were added
  MUTATE_JOBS   mutants run at once (1 or 2; default 2)
  MUTATE_LIST   1: list the mutants and stop
  MUTATE_TIMEOUT_MIN  the least per-mutant timeout in seconds (default 20)
  MUTATE_WORKDIR      scratch directory (default $BUILD/mutate); give
                two runs at once different ones
  MUTATE_SANITIZE     e.g. address,undefined: build mutants with these
                sanitizers (make mutate BUILD=build-asan
                SANITIZE=address,undefined sets it), so that a leak or an
                out-of-bounds read kills a mutant too
Set by the Makefile: BUILD, MUTATE_CC, MUTATE_CFLAGS, MUTATE_LIBS.
"""

import concurrent.futures
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
BUILD = os.environ.get("BUILD", "build")
CC = os.environ.get("MUTATE_CC", "cc")
CFLAGS = os.environ.get("MUTATE_CFLAGS", "-std=c11 -D_GNU_SOURCE").split()
LIBS = os.environ.get("MUTATE_LIBS", "").split()
# With MUTATE_SANITIZE (e.g. "address,undefined", BUILD being a tree built
# with the same SANITIZE=), a leak, an overflow or undefined behaviour that
# a mutant causes kills it too.
SANITIZE = os.environ.get("MUTATE_SANITIZE", "")
SAN_FLAGS = (["-fsanitize=" + SANITIZE, "-fno-omit-frame-pointer"]
             if SANITIZE else [])
EQUIV_FILE = os.path.join(ROOT, "tests", "mutate", "equivalent.txt")

# The daemon's objects but main.o, as the Makefile links the unit tests.
DAEMON_SKIP = ("main.o",)

# file -> (kind, test binaries, functions to leave alone)
FILES = {
    "common/lsn.c": ("unit", ["check_common", "check_lsn", "check_topology"],
                     None),
    "common/num.c": ("unit", ["check_common", "check_protocol"], None),
    "common/hostport.c": ("unit", ["check_common", "check_client_proto"],
                          None),
    "common/roles.c": ("unit", ["check_common", "check_topology"], None),
    "common/errcodes.c": ("unit", ["check_common", "check_protocol"], None),
    "common/request.c": ("unit", ["check_common", "check_protocol"], None),
    "daemon/topology.c": ("unit", ["check_topology"], None),
    "daemon/protocol.c": ("unit", ["check_protocol"], None),
    "daemon/config.c": ("unit", ["check_config"], None),
    "daemon/http_api.c": ("unit", ["check_http"], None),
    "daemon/config_table.c": ("unit", ["check_config"], None),
    "daemon/pqerror.c": ("unit", ["check_pqerror"], None),
    "client-lib/src/proto.c": ("unit", ["check_client_proto", "check_common"],
                               None),
    "client-lib/src/ctx.c": ("it", ["it_lib_session", "it_lib_mutants",
                                    "it_lib_client"], None),
    "client-lib/src/db.c": ("it", ["it_lib_session", "it_lib_mutants",
                                   "it_lib_client", "it_lib_async"], None),
    "client-lib/src/db-pool.c": ("it", ["it_lib_session", "it_lib_mutants",
                                        "it_lib_client", "it_lib_async"], None),
    "client-lib/src/db-route.c": ("it", ["it_lib_session", "it_lib_mutants",
                                         "it_lib_client", "it_lib_async"], None),
    # The default hook: its stale answers while the daemon is down, the
    # readers' primary reset and the replica WATCH have tests of their own.
    "client-lib/src/db-hook.c": ("it", ["it_lib_session", "it_lib_mutants",
                                        "it_lib_client", "it_lib_async",
                                        "it_lib_daemon_down",
                                        "it_lib_replica_events",
                                        "it_lib_ryw"], None),
}
GROUPS = {
    "pure": [f for f, v in FILES.items() if v[0] == "unit"],
    "lib": [f for f, v in FILES.items() if v[0] == "it"],
}


# --- reading C -------------------------------------------------------------

def code_mask(text):
    """A list of booleans, True where text[i] is code (not a comment, a
    string or a character literal, not a preprocessor line)."""
    mask = [True] * len(text)
    i, n = 0, len(text)
    bol = True
    while i < n:
        c = text[i]
        if bol and c == "#":
            j = i
            while j < n and text[j] != "\n":
                if text[j] == "\\" and j + 1 < n and text[j + 1] == "\n":
                    j += 1
                j += 1
            for k in range(i, j):
                mask[k] = False
            i = j
            continue
        if c == "\n":
            bol = True
            i += 1
            continue
        if not c.isspace():
            bol = False
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            for k in range(i, j):
                if text[k] != "\n":
                    mask[k] = False
            i = j
            continue
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            for k in range(i, j):
                mask[k] = False
            i = j
            continue
        if c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                if text[j] == "\\":
                    j += 1
                j += 1
            for k in range(i, min(j + 1, n)):
                mask[k] = False
            i = j + 1
            continue
        i += 1
    return mask


def function_lines(lines):
    """{line index: function name} for the lines inside function bodies
    (house style: the name at column 0, braces alone at column 0)."""
    out = {}
    name = None
    inside = None
    for i, line in enumerate(lines):
        m = re.match(r"^([A-Za-z_]\w*)\(", line)
        if m and inside is None:
            name = m.group(1)
        if line.rstrip() == "{" and inside is None and name:
            inside = name
            continue
        if line.rstrip() == "}" and inside is not None:
            inside = None
            name = None
            continue
        if inside is not None:
            out[i] = inside
    return out


DECL = re.compile(r"^\s*(?:(?:const|static|unsigned|signed|volatile|struct|"
                  r"enum|union)\s+)*[A-Za-z_]\w*\s+[\s*]*[A-Za-z_]\w*"
                  r"\s*(?:\[[^\]]*\]\s*)*(?:=|;|,)")
KEYWORDS = ("return", "goto", "break", "continue", "if", "else", "while",
            "for", "do", "switch", "case", "default")


def is_declaration(code):
    s = code.strip()
    first = re.match(r"[A-Za-z_]\w*", s)
    if not first or first.group(0) in KEYWORDS:
        return False
    return bool(DECL.match(code))


def matching_paren(code, i):
    """Index of the ')' closing the '(' at code[i], or -1 on this line."""
    depth = 0
    for j in range(i, len(code)):
        if code[j] == "(":
            depth += 1
        elif code[j] == ")":
            depth -= 1
            if depth == 0:
                return j
    return -1


def const_variants(tok):
    m = re.match(r"^(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)([uUlL]*)$", tok)
    if not m:
        return []
    lit, suf = m.group(1), m.group(2)
    if lit.lower().startswith("0x"):
        v, fmt = int(lit, 16), lambda x: "0x%X" % x
    elif lit.startswith("0") and len(lit) > 1:
        v, fmt = int(lit, 8), lambda x: "0%o" % x
    else:
        v, fmt = int(lit), str
    return [fmt(v + 1) + suf]


class Mutant:
    def __init__(self, path, lineno, op, orig, new, func="", prev=("", "")):
        self.path, self.lineno, self.op = path, lineno, op
        self.func = func
        self.prev = prev	# the two code lines before, for equivalent.txt
        self.orig, self.new = orig, new
        self.status = None
        self.secs = 0.0

    def ident(self):
        return "%s:%d %s" % (self.path, self.lineno, self.op)

    def keys(self):
        """The keys equivalent.txt may use: the line alone, prefixed by
        its function, "name(): line", or by its function and the one or
        two code lines before it, "name(): previous >> line" or "name():
        before previous >> previous >> line" (for a line such as "break;"
        that matters elsewhere in the same function)."""
        return [(self.path, norm(self.orig), norm(self.new)),
                (self.path, "%s(): %s" % (self.func, norm(self.orig)),
                 norm(self.new)),
                (self.path, "%s(): %s >> %s" % (
                    self.func, norm(self.prev[1]), norm(self.orig)),
                 norm(self.new)),
                (self.path, "%s(): %s >> %s >> %s" % (
                    self.func, norm(self.prev[0]), norm(self.prev[1]),
                    norm(self.orig)),
                 norm(self.new))]


def norm(s):
    return " ".join(s.split())


def mutants_of(path, skip_funcs):
    text = open(os.path.join(ROOT, path)).read()
    mask = code_mask(text)
    lines = text.split("\n")
    funcs = function_lines(lines)
    off = 0
    out = []
    seen = set()

    def add(i, op, new):
        if new == lines[i] or (i, new) in seen:
            return
        seen.add((i, new))
        out.append(Mutant(path, i + 1, op, lines[i], new, funcs[i],
                          tuple(prev_code)))

    prev_end = True
    prev_code = ["", ""]	# the last two lines before this one with code
    cur_code = ["", ""]
    for i, line in enumerate(lines):
        prev_code[:] = cur_code
        start = off
        off += len(line) + 1
        if i not in funcs or (skip_funcs and skip_funcs.match(funcs[i])):
            prev_end = True
            continue
        # code: the line with comments and literals blanked out
        code = "".join(ch if mask[start + k] else " "
                       for k, ch in enumerate(line))
        stripped = code.strip()
        is_decl = is_declaration(code)

        for m in re.finditer(r"<<=|>>=|<<|>>|->|<=|>=|==|!=|<|>|&&|\|\|",
                             code):
            tok = m.group(0)
            repl = {"<": ["<="], "<=": ["<"], ">": [">="], ">=": [">"],
                    "==": ["!="], "!=": ["=="], "&&": ["||"],
                    "||": ["&&"]}.get(tok, [])
            op = "LCR" if tok in ("&&", "||") else "ROR"
            for r in repl:
                add(i, op, line[:m.start()] + r + line[m.end():])

        for m in re.finditer(r"(?<![\w.])(0[xX][0-9a-fA-F]+|\d+)[uUlL]*"
                             r"(?![\w.])", code):
            if is_decl and line[:m.start()].rstrip().endswith("["):
                continue	# an array size: a bigger buffer changes nothing
            for r in const_variants(m.group(0)):
                if line[:m.start()].rstrip().endswith("-"):
                    r = str(int(m.group(0).rstrip("uUlL"), 0) - 1)
                add(i, "CONST", line[:m.start()] + r + line[m.end():])

        for m in re.finditer(r"\b(if|while)\s*\(", code):
            p = m.end() - 1
            q = matching_paren(code, p)
            cond = code[p + 1:q]
            if (q > 0 and not re.search(r"&&|\|\|", cond) and
                    len(re.findall(r"==|!=|<=|>=|<|>", cond)) == 1 and
                    not re.search(r"<<|>>|->", cond)):
                continue	# ROR of its one comparison negates it
            if q > 0:
                add(i, "NEG", line[:p] + "(!" + line[p:q + 1] + ")" +
                    line[q + 1:])

        m = re.search(r"\breturn\s*\(?\s*(true|false|0|-1)\s*\)?\s*;", code)
        if m:
            swap = {"true": "false", "false": "true", "0": "-1",
                    "-1": "0"}[m.group(1)]
            a, b = m.span(1)
            add(i, "RET", line[:a] + swap + line[b:])

        if (prev_end and stripped.endswith(";") and not is_decl and
                not re.match(r"(return|case|default|else|for|do)\b",
                             stripped) and
                stripped.count("(") == stripped.count(")") and
                not stripped.startswith("}")):
            indent = line[:len(line) - len(line.lstrip())]
            add(i, "DEL", indent + ";")
        if stripped:
            prev_end = stripped.endswith((";", "{", "}", ":"))
            cur_code = [cur_code[1], line]
    return out


# --- equivalent mutants ----------------------------------------------------

def load_equivalents():
    """{(file, original line, mutated line): reason}: one entry is four
    tab-separated fields, the line text compared with blanks collapsed;
    the original line may be prefixed "function(): " to match only there."""
    eq = {}
    if not os.path.exists(EQUIV_FILE):
        return eq
    for raw in open(EQUIV_FILE):
        if not raw.strip() or raw.startswith("#"):
            continue
        f = raw.rstrip("\n").split("\t")
        if len(f) != 4:
            sys.exit("%s: not 4 tab-separated fields: %r" % (EQUIV_FILE, raw))
        eq[(f[0], norm(f[1]), norm(f[2]))] = f[3]
    return eq


# --- building and running ----------------------------------------------------

LIVE = set()		# process groups running now
LIVE_LOCK = threading.Lock()


def run(cmd, timeout, env=None, cwd=ROOT):
    """(returncode, output, timed out) of cmd in a process group of its
    own, killed as a whole on timeout."""
    p = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, start_new_session=True)
    with LIVE_LOCK:
        LIVE.add(p.pid)
    try:
        out, _ = p.communicate(timeout=timeout)
        return p.returncode, out.decode(errors="replace"), False
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, _ = p.communicate()
        return -1, out.decode(errors="replace"), True
    finally:
        with LIVE_LOCK:
            LIVE.discard(p.pid)


def on_signal(signum, frame):
    """Interrupted: the tests of the mutants running now go too."""
    with LIVE_LOCK:
        for pid in LIVE:
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
    os._exit(128 + signum)


def obj(path):
    return os.path.join(BUILD, path[:-2] + ".o")


def link_inputs(path, kind, test, mutant_obj):
    b = BUILD
    if kind == "unit":
        core = [os.path.join(b, "daemon", f[:-2] + ".o")
                for f in sorted(os.listdir(os.path.join(ROOT, "daemon")))
                if f.endswith(".c") and f[:-2] + ".o" not in DAEMON_SKIP]
        # common/ is linked into the daemon too (the Makefile's DAEMON_OBJ)
        core += [os.path.join(b, "common", f[:-2] + ".o")
                 for f in sorted(os.listdir(os.path.join(ROOT, "common")))
                 if f.endswith(".c")]
        core = [o for o in core if o != obj(path)]
        return ([os.path.join(b, "tests", "unit", test + ".o"), mutant_obj]
                + core + [os.path.join(b, "libpgbeacon.a")])
    sup = sorted(os.path.join(b, "tests", "integration", "support", f)
                 for f in os.listdir(os.path.join(b, "tests", "integration",
                                                  "support"))
                 if f.endswith(".o"))
    return ([os.path.join(b, "tests", "integration", test + ".o"),
             mutant_obj] + sup + [os.path.join(b, "libpgbeacon.a")])


def compile_and_test(path, text, workdir, timeouts):
    """('killed', 'survived' or 'nocompile', output, seconds the tests
    ran) for the source text of path."""
    kind, tests, _ = FILES[path]
    src = os.path.join(workdir, os.path.basename(path))
    mobj = src[:-2] + ".o"
    with open(src, "w") as f:
        f.write(text)
    d = os.path.dirname(path)
    rc, out, _ = run([CC] + CFLAGS + SAN_FLAGS + ["-O0", "-w", "-iquote", d,
                                      "-I.", "-Idaemon", "-Iclient-lib", "-c",
                                      "-o", mobj, src], 300)
    if rc != 0:
        return "nocompile", out, 0
    ran = 0.0
    for t in tests:
        exe = os.path.join(workdir, t)
        rc, out, _ = run([CC, "-o", exe] + SAN_FLAGS +
                         link_inputs(path, kind, t, mobj)
                         + LIBS, 300)
        if rc != 0:
            return "nocompile", out, 0
        env = dict(os.environ)
        env["BUILD"] = BUILD
        if SANITIZE:
            env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=0"
            env["LSAN_OPTIONS"] = ("suppressions=%s:print_suppressions=0" %
                                   os.path.join(ROOT, "tests", "lsan.supp"))
            env["UBSAN_OPTIONS"] = "halt_on_error=1:print_stacktrace=1"
        if kind == "unit":
            env["CK_VERBOSITY"] = "silent"
            env["CK_FORK"] = "no"	# ten times faster; a crash kills too
            cmd = [exe]
        else:
            cmd = [os.path.join(ROOT, "tests", "run.sh"), exe]
        t0 = time.time()
        rc, out, timed_out = run(cmd, timeouts.get(t, 60), env=env)
        ran += time.time() - t0
        if rc != 0 or timed_out:
            return "killed", out, ran
    return "survived", "", ran


def main():
    want = os.environ.get("MUTATE_FILES", "").replace(",", " ").split()
    files = []
    for w in want or list(FILES):
        if w in GROUPS:
            files += GROUPS[w]
        else:
            hit = [f for f in FILES if f == w or os.path.basename(f) == w]
            if not hit:
                sys.exit("mutate: unknown file %r (known: %s, pure, lib)" %
                         (w, " ".join(FILES)))
            files += hit
    files = list(dict.fromkeys(files))
    ops = os.environ.get("MUTATE_OPS", "").replace(",", " ").split()
    maxn = int(os.environ.get("MUTATE_MAX", "0") or 0)
    jobs = max(1, min(2, int(os.environ.get("MUTATE_JOBS", "2") or 2)))
    tmin = float(os.environ.get("MUTATE_TIMEOUT_MIN", "20") or 20)
    equiv = load_equivalents()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    plan = []
    for f in files:
        ms = mutants_of(f, FILES[f][2])
        if ops:
            ms = [m for m in ms if m.op in ops]
        if maxn and len(ms) > maxn:
            step = len(ms) / maxn
            ms = [ms[int(k * step)] for k in range(maxn)]
        plan += ms
    lines = os.environ.get("MUTATE_LINES", "").replace(",", " ").split()
    if lines:
        plan = [m for m in plan
                if "%s:%d" % (m.path, m.lineno) in lines or
                "%s:%d" % (os.path.basename(m.path), m.lineno) in lines]
    for m in plan:
        if any(k in equiv for k in m.keys()):
            m.status = "equivalent"

    if os.environ.get("MUTATE_LIST"):
        for m in plan:
            print("%s%s\n  - %s\n  + %s" % (
                m.ident(), " (equivalent)" if m.status else "",
                m.orig.strip(), m.new.strip()))
        print("%d mutants" % len(plan))
        return 0

    top = os.path.join(ROOT, os.environ.get("MUTATE_WORKDIR") or
                       os.path.join(BUILD, "mutate"))
    shutil.rmtree(top, ignore_errors=True)
    os.makedirs(top)

    # The unmutated sources must pass, and their run time sets the timeout.
    timeouts = {}
    for f in files:
        wd = os.path.join(top, "baseline")
        os.makedirs(wd, exist_ok=True)
        st, out, took = compile_and_test(f, open(os.path.join(ROOT, f)).read(),
                                         wd, {t: 3600 for t in FILES[f][1]})
        if st != "survived":
            sys.stdout.write(out)
            sys.exit("mutate: the unmutated %s does not pass (%s)" % (f, st))
        for t in FILES[f][1]:
            timeouts[t] = max(timeouts.get(t, 0), tmin, 5 * took)
    print("mutate: %d mutants in %d files, %d at a time, timeouts %s" % (
        len(plan), len(files), jobs,
        ", ".join("%s %ds" % (t, s) for t, s in sorted(timeouts.items()))))
    sys.stdout.flush()

    todo = [m for m in plan if m.status is None]
    free = [os.path.join(top, "w%d" % k) for k in range(jobs)]
    for w in free:
        os.makedirs(w)
    lock = threading.Lock()
    done = [0]

    def one(m):
        with lock:
            wd = free.pop()
        try:
            src = open(os.path.join(ROOT, m.path)).read().split("\n")
            src[m.lineno - 1] = m.new
            t0 = time.time()
            m.status, _, _ = compile_and_test(m.path, "\n".join(src), wd,
                                           timeouts)
            m.secs = time.time() - t0
        finally:
            with lock:
                free.append(wd)
                done[0] += 1
                print("[%d/%d] %s %s (%.1fs)" % (done[0], len(todo),
                                                 m.ident(), m.status, m.secs))
                if m.status == "survived":
                    print("  - %s\n  + %s" % (m.orig.strip(), m.new.strip()))
                sys.stdout.flush()

    with concurrent.futures.ThreadPoolExecutor(jobs) as ex:
        list(ex.map(one, todo))

    report = []
    report.append("")
    report.append("%-26s %7s %7s %7s %7s %7s" % (
        "file", "killed", "surviv", "equiv", "nocomp", "score"))
    bad = []
    for f in files:
        ms = [m for m in plan if m.path == f]
        c = {s: sum(1 for m in ms if m.status == s)
             for s in ("killed", "survived", "equivalent", "nocompile")}
        den = c["killed"] + c["survived"]
        score = "%.1f%%" % (100.0 * c["killed"] / den) if den else "-"
        report.append("%-26s %7d %7d %7d %7d %7s" % (
            f, c["killed"], c["survived"], c["equivalent"], c["nocompile"],
            score))
        bad += [m for m in ms if m.status == "survived"]
    if bad:
        report.append("")
        report.append("surviving mutants:")
        for m in bad:
            report.append("%s\n  - %s\n  + %s" % (m.ident(), m.orig.strip(),
                                                  m.new.strip()))
    text = "\n".join(report)
    print(text)
    with open(os.path.join(top, "report.txt"), "w") as f:
        f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
