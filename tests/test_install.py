#!/usr/bin/env python3
"""crnn installed with `cmake --install BUILD --prefix P` into a temporary prefix, run from there
with nothing of the build folder or the checkout in reach: PATH is P/bin:/usr/bin:/bin, no
CRNN_BIN or CRNN_ROOT, and the programs run in a folder of their own.

Run as `test_install.py <case> BUILD_DIR CMAKE`:
- programs: the layout; crnn-preprocess, crnn-train (-gpu -1, a few iterations, and with an
  installed preset), crnn-sample, crnn-eval, crnn-inspect and crnn-plot end to end; crnn-launch
  finding the programs beside itself (also with P/bin off the PATH) and starting 2 ranks; the man
  pages (one per program, listing every flag its --help lists).
- deb: `cpack -G DEB` into a temporary folder: a CUDA build is refused; a CPU build's package
  holds the programs, scripts, presets, docs and man pages under /usr, its programs have no
  RUNPATH, and its Depends name the package (dpkg -S) of every library they link, of mpirun and of
  gnuplot. (Installing the .deb needs root: .ci/run does it, tests/install/deb_smoke.sh.)
- slurm: the installed share/crnn/slurm/cpu.sbatch submitted from a folder that is no checkout to
  the local Slurm of tests/slurm/local_slurm.sh trains with 2 ranks; without P/bin on the PATH
  the job fails saying how to point it at crnn. Exits 77 (ctest's SKIP) when Slurm cannot run
  here.
Both exit 77 in sanitizer builds (CRNN_SANITIZE), which make no man pages and are not for
installing."""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import SKIP, Skip, Slurm, losses, make_text  # noqa: E402

PROGRAMS = ["crnn-preprocess", "crnn-train", "crnn-sample", "crnn-eval", "crnn-plot", "crnn-inspect"]
TINY = ["-rnn_size", "32", "-num_layers", "1", "-wordvec_size", "16", "-batch_size", "4", "-seq_length", "16"]


def run(args, env, cwd, timeout=300):
    p = subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def must(args, env, cwd, timeout=300):
    rc, out, err = run(args, env, cwd, timeout)
    assert rc == 0, f"{' '.join(map(str, args))} failed ({rc}):\n{out}\n{err}"
    return out + err


class Installed:
    """cmake --install BUILD --prefix P into a temporary folder, and a clean environment."""

    def __init__(self, build, cmake):
        self.top = tempfile.mkdtemp(prefix="crnn-install-")
        self.prefix = os.path.join(self.top, "prefix")
        self.work = os.path.join(self.top, "work")
        os.makedirs(self.work)
        p = subprocess.run([cmake, "--install", build, "--prefix", self.prefix], capture_output=True, text=True,
                           timeout=120)
        assert p.returncode == 0, f"cmake --install failed ({p.returncode}):\n{p.stdout}\n{p.stderr}"
        self.build = build
        self.bin = os.path.join(self.prefix, "bin")
        self.share = os.path.join(self.prefix, "share", "crnn")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CRNN_")}
        self.env["PATH"] = f"{self.bin}:/usr/bin:/bin"

    def close(self):
        shutil.rmtree(self.top, ignore_errors=True)


def case_programs(inst):
    env, work = inst.env, inst.work
    # the layout
    for name in PROGRAMS + ["crnn-launch"]:
        path = os.path.join(inst.bin, name)
        assert os.path.isfile(path) and os.access(path, os.X_OK), f"{path} is not installed (executable)"
        assert shutil.which(name, path=env["PATH"]) == path, (name, shutil.which(name, path=env["PATH"]))
    for rel in ("slurm/common.sh", "slurm/cpu.sbatch", "slurm/gpu.sbatch", "slurm/gpu-multinode.sbatch",
                "slurm/sweep.sbatch", "slurm/sweep", "slurm/make-grid", "slurm/sweep-table", "slurm/sweep-grid.txt",
                "configs/corpus-1MB.conf", "configs/corpus-large.conf"):
        assert os.path.isfile(os.path.join(inst.share, rel)), f"share/crnn/{rel} is not installed"
    for rel in ("slurm/cpu.sbatch", "slurm/sweep", "slurm/make-grid", "slurm/sweep-table"):
        assert os.access(os.path.join(inst.share, rel), os.X_OK), f"share/crnn/{rel} is not executable"
    for name in ("README.md", "FORMATS.md", "DESIGN.md"):
        assert os.path.isfile(os.path.join(inst.prefix, "share", "doc", "crnn", name)), f"share/doc/crnn/{name}"
    for name in PROGRAMS:
        out = must([name, "--version"], env, work)
        assert out.startswith(f"{name} "), out
    # a CUDA build's backend: its module in lib/crnn, found from bin/ (the programs link no CUDA)
    module = os.path.join(inst.prefix, "lib", "crnn", "libcrnn-cuda.so")
    built = os.path.isfile(os.path.join(inst.build, "libcrnn-cuda.so"))
    assert os.path.isfile(module) == built, f"{module} installed: {os.path.isfile(module)}, built: {built}"

    # end to end, by bare names found on the PATH
    make_text(os.path.join(work, "t.txt"))
    must(["crnn-preprocess", "--input_txt", "t.txt", "--output_h5", "t.h5", "--output_json", "t.json", "--quiet"],
         env, work)
    data = ["-input_h5", "t.h5", "-input_json", "t.json"]
    out = must(["crnn-train", *data, "-gpu", "-1", *TINY, "-max_iters", 30, "-print_every", 10,
                "-checkpoint_every", 30, "-checkpoint_name", "cv/ck"], env, work)
    got = losses(out)
    assert len(got) == 3 and got[-1] < got[0], f"losses {got}:\n{out}"
    if built:  # -gpu 0 reaches the installed module: it asks the CUDA driver (no device here, or one)
        out = must(["crnn-train", *data, "-gpu", "0", *TINY, "-max_iters", 1, "-checkpoint_every", 0,
                    "-checkpoint_name", "cv/gpu"], env, work)
        assert "libcrnn-cuda" not in out and "CUDA module" not in out, out
    assert os.path.exists(os.path.join(work, "cv", "ck_30.h5")), out
    # an installed preset (its sizes, with the command line's winning where both are given)
    preset = os.path.join(inst.share, "configs", "corpus-1MB.conf")
    out = must(["crnn-train", "-config", preset, *data, "-gpu", "-1", "-rnn_size", 16, "-batch_size", 2,
                "-seq_length", 8, "-max_iters", 2, "-checkpoint_every", 0, "-checkpoint_name", "cv/preset"], env, work)
    assert re.search(r"gru 2 x 16\b", out), out
    # sampling, evaluating, inspecting, plotting the checkpoint
    text = must(["crnn-sample", "-checkpoint", "cv/ck_30.h5", "-gpu", "-1", "-length", 200, "-seed", 3], env, work)
    with open(os.path.join(work, "t.txt")) as f:
        alphabet = set(f.read())
    assert len(text) >= 200 and set(text) <= alphabet | {"\n"}, repr(text)
    out = must(["crnn-eval", "-checkpoint", "cv/ck_30.h5", "-gpu", "-1"], env, work)
    assert re.search(r"val loss = \d+\.\d+", out), out
    out = must(["crnn-inspect", "cv/ck_30.h5"], env, work)
    assert "iteration: 30" in out and "lstm, 1 layers of 32" in out, out
    out = must(["crnn-plot", "cv/ck_metrics.jsonl", "-o", "cv/ck.svg"], env, work)
    with open(os.path.join(work, "cv", "ck.svg")) as f:
        assert "<svg" in f.read()

    # crnn-launch: the programs beside itself, also when P/bin is not on the PATH
    launch = os.path.join(inst.bin, "crnn-launch")
    bare = dict(env, PATH="/usr/bin:/bin")
    out = must([launch, "--dry-run", "--ranks", "2", "crnn-train", "-gpu", "-1"], bare, work)
    assert re.search(rf"would run: mpirun -np 2 .*{re.escape(launch)} {re.escape(inst.bin)}/crnn-train -gpu -1", out), out
    rc, out, err = run([launch, "no-such-program"], bare, work)
    assert rc == 2 and "no-such-program is not in" in err and "CRNN_BIN" in err, (rc, err)
    out = must([launch, "--ranks", "2", "crnn-train", *data, "-gpu", "-1", *TINY, "-max_iters", 3,
                "-checkpoint_every", 0, "-checkpoint_name", "cv/launch"], bare, work)
    assert "in 8 streams" in out, out

    # the man pages: one per program, rendered by man, with every flag of its --help
    mandir = os.path.join(inst.prefix, "share", "man", "man1")
    for name in PROGRAMS:
        page = os.path.join(mandir, f"{name}.1")
        assert os.path.isfile(page), (f"{page} is not installed: were the man pages made? (help2man at configure "
                                      "time, launch/deps.sh installs it)")
        if shutil.which("man"):
            shown = must(["man", "-l", page], dict(env, MANWIDTH="250", MANPAGER="cat", PAGER="cat"), work)
        else:  # no man-db: the page's own text, without roff's escapes
            with open(page) as f:
                shown = re.sub(r"\\f[BIRP]|\\[,/]", "", f.read()).replace("\\-", "-")
        assert re.search(rf"^NAME\s*\n\s*{name} - \S", shown, re.M) and re.search(rf"^SYNOPSIS\s*\n\s*{name} ",
                                                                                    shown, re.M), shown[:800]
        flags = re.findall(r"^\s+(-[a-z][a-z0-9_]*)\b", must([name, "--help"], env, work), re.M)
        assert len(flags) >= 2, f"{name} --help lists no flags?"
        missing = [fl for fl in flags if not re.search(rf"^\s*{re.escape(fl)}\b", shown, re.M)]
        assert not missing, f"{name}.1 lacks the flags {missing} of {name} --help:\n{shown}"


def case_slurm(inst):
    s = Slurm()
    try:
        s.start()
    except Skip as e:
        print(f"slurm: skipped: {e}")
        s.stop()
        return SKIP
    try:
        work = inst.work
        s.env = dict(inst.env, SLURM_CONF=s.env["SLURM_CONF"])
        make_text(os.path.join(work, "t.txt"))
        must(["crnn-preprocess", "--input_txt", "t.txt", "--output_h5", "t.h5", "--output_json", "t.json", "--quiet"],
             s.env, work)
        script = os.path.join(inst.share, "slurm", "cpu.sbatch")
        log = os.path.join(work, "cpu.out")
        ck = os.path.join(work, "cv", "checkpoint")
        j = s.sbatch(["-n", 2, f"--output={log}", script, *TINY, "-max_iters", 20, "-checkpoint_every", 10,
                      "-print_every", 5],
                     env={"CRNN_DATA": os.path.join(work, "t"), "CRNN_CHECKPOINT_NAME": ck}, cwd=work)
        # without the installed bin/ on the PATH, the batch script cannot know where crnn is
        bad_log = os.path.join(work, "nopath.out")
        bad = s.sbatch(["-n", 1, f"--output={bad_log}", script, "-max_iters", 1],
                       env={"PATH": "/usr/bin:/bin", "CRNN_DATA": os.path.join(work, "t")}, cwd=work)
        info = s.wait(j, {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL"}, timeout=180)
        with open(log, errors="replace") as f:
            text = f.read()
        assert info["JobState"] == "COMPLETED", f"{info['JobState']}\n{text}\n{s.logs()}"
        assert "in 8 streams" in text and "training finished" in text and len(losses(text)) == 4, text
        assert os.path.exists(f"{ck}_20.h5"), text
        info = s.wait(bad, {"COMPLETED", "FAILED", "CANCELLED"}, timeout=60)
        with open(bad_log, errors="replace") as f:
            text = f.read()
        assert info["JobState"] == "FAILED" and "put an installed crnn's bin/ on the PATH" in text, \
            f"{info['JobState']}\n{text}"
    finally:
        s.stop()
    return 0


def case_deb(inst, build, cmake):
    """cpack -G DEB into a temporary folder (no root): in a CUDA build it refuses; in a CPU build
    the package installs to /usr, and its Depends name the Debian package of every library its
    programs link (as dpkg -S finds them), mpirun's and gnuplot's."""
    if not shutil.which("dpkg") or not shutil.which("dpkg-deb"):
        print("deb: skipped: no dpkg here")
        return SKIP
    cpack = os.path.join(os.path.dirname(cmake), "cpack")
    out_dir = os.path.join(inst.top, "deb")
    p = subprocess.run([cpack, "-G", "DEB", "--config", os.path.join(build, "CPackConfig.cmake"), "-B", out_dir],
                       capture_output=True, text=True, timeout=300)
    with_cuda = "CUDA off" not in must([os.path.join(build, "crnn-train"), "--version"], os.environ, inst.work)
    if with_cuda:
        assert p.returncode != 0 and "made from a CPU build" in p.stdout + p.stderr, \
            f"cpack of a CUDA build: {p.returncode}\n{p.stdout}\n{p.stderr}"
        print("deb: a CUDA build: cpack refuses it, as it should")
        return 0
    assert p.returncode == 0, f"cpack failed ({p.returncode}):\n{p.stdout}\n{p.stderr}"
    debs = [f for f in os.listdir(out_dir) if f.endswith(".deb")]
    assert len(debs) == 1 and re.match(r"crnn_\d+\.\d+\.\d+_\w+\.deb$", debs[0]), debs
    deb = os.path.join(out_dir, debs[0])

    def field(name):
        return must(["dpkg-deb", "-f", deb, name], os.environ, inst.work).strip()

    assert field("Package") == "crnn" and field("Section") == "science" and field("Maintainer"), field("Maintainer")
    assert "CUDA" in field("Description"), field("Description")
    depends = [{alt.split()[0] for alt in dep.split("|")} for dep in field("Depends").split(",")]
    files = set(must(["dpkg-deb", "-c", deb], os.environ, inst.work).split())
    for path in [f"./usr/bin/{n}" for n in PROGRAMS + ["crnn-launch"]] + [
            "./usr/share/crnn/slurm/cpu.sbatch", "./usr/share/crnn/slurm/common.sh",
            "./usr/share/crnn/configs/corpus-1MB.conf", "./usr/share/man/man1/crnn-train.1",
            "./usr/share/doc/crnn/README.md"]:
        assert path in files, f"{path} is not in {debs[0]}"
    # the package's programs: no RUNPATH, and every library they need comes from a package it
    # depends on (or from an alternative of one)
    root = os.path.join(inst.top, "deb-root")
    must(["dpkg-deb", "-x", deb, root], os.environ, inst.work)
    owners = {}

    def owner(path):
        """The package that holds path (dpkg -S); with /usr merged, dpkg may know it as /lib/..."""
        if path in owners:
            return owners[path]
        for cand in dict.fromkeys([os.path.realpath(path), path,
                                   re.sub(r"^/usr/lib/", "/lib/", os.path.realpath(path))]):
            p = subprocess.run(["dpkg", "-S", cand], capture_output=True, text=True, timeout=60)
            if p.returncode == 0:
                owners[path] = p.stdout.split(":")[0]
                return owners[path]
        raise AssertionError(f"no package holds {path} (dpkg -S)")

    needed_pkgs = {}
    for name in PROGRAMS:
        exe = os.path.join(root, "usr", "bin", name)
        dyn = must(["readelf", "-d", exe], os.environ, inst.work)
        assert "RPATH" not in dyn and "RUNPATH" not in dyn, f"{name} has a RUNPATH:\n{dyn}"
        needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(\S+)\]", dyn)
        resolved = dict(re.findall(r"^\s*(\S+) => (/\S+)", must(["ldd", exe], os.environ, inst.work), re.M))
        for soname in needed:
            assert soname in resolved, f"{name} needs {soname}, which the loader does not find"
            needed_pkgs.setdefault(owner(resolved[soname]), set()).add(f"{name}: {soname}")
    for tool in ("mpirun", "gnuplot"):
        path = shutil.which(tool)
        assert path, f"no {tool} on this machine (launch/deps.sh installs it)"
        needed_pkgs.setdefault(owner(path), set()).add(tool)
    missing = {pkg: sorted(why) for pkg, why in needed_pkgs.items() if not any(pkg in alts for alts in depends)}
    assert not missing, f"Depends ({field('Depends')}) lacks the packages {missing}"
    print(f"deb: {debs[0]}: Depends {field('Depends')}")
    return 0


CASES = {"programs": case_programs, "slurm": case_slurm, "deb": case_deb}


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in CASES:
        sys.exit(f"usage: test_install.py {{{','.join(CASES)}}} BUILD_DIR CMAKE")
    name, build, cmake = sys.argv[1:]
    if os.environ.get("CRNN_SANITIZE"):
        print(f"{name}: skipped in sanitizer builds (CRNN_SANITIZE): they make no man pages and are not installed")
        return SKIP
    t0 = time.time()
    inst = Installed(build, cmake)
    try:
        rc = (case_deb(inst, build, cmake) if name == "deb" else CASES[name](inst)) or 0
    finally:
        inst.close()
    if rc == 0:
        print(f"{name}: ok ({time.time() - t0:.1f} s)")
    return rc


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # ctest's timeout: run the finally blocks
    sys.exit(main())
