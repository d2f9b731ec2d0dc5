#!/usr/bin/env python3
"""Every file the build read from the system comes from a package a fresh machine gets.

A fresh Debian 12 machine has its base system (packages of priority required and
important, which debootstrap installs) and what scripts/setup.sh installs with
--no-install-recommends, plus their Depends and Pre-Depends. A machine that has
worked on other things has more, and a build can silently use it: oneDNN's CMake
config once found OpenCL development files that only libdnnl-dev's *Recommends*
bring, so CI stayed green while a fresh machine failed to configure.

This reads what the finished build in BUILD_DIR used -- the CMake files configure
loaded (build.ninja's RERUN_CMAKE inputs), every header each object included
(ninja's deps log), every library on the link lines, the files CMake's find_*
calls cached -- maps each to the Debian package that owns it (dpkg's file lists;
each symlink hop is checked too, so a -dev package's libfoo.so link counts), and
fails naming each file whose package is outside that set.

Usage: check_build_inputs.py BUILD_DIR [--without PKG ...]
(--without drops packages from setup.sh's list, to show the check catches them.)
"""
import argparse
import glob
import os
import re
import shlex
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.dirname(os.path.dirname(HERE))


def canonical(path):
    """The path with its directory resolved (usrmerge: /lib -> /usr/lib), its last part kept."""
    d, base = os.path.split(os.path.abspath(path))
    return os.path.join(os.path.realpath(d), base)


def read_dpkg_status():
    """{package: {field: value}} of installed packages, from dpkg's status file."""
    out = subprocess.run(
        ["dpkg-query", "-W", "-f",
         "${Package}\t${Status}\t${Priority}\t${Essential}\t${Provides}\t${Pre-Depends}\t${Depends}\n"],
        check=True, capture_output=True, text=True).stdout
    packages = {}
    for line in out.splitlines():
        name, status, priority, essential, provides, predepends, depends = line.split("\t")
        if not status.endswith(" installed"):
            continue
        packages[name] = dict(priority=priority, essential=essential == "yes",
                              provides=provides, depends=", ".join(x for x in (predepends, depends) if x))
    return packages


def dependency_closure(roots, packages):
    """Packages apt installs for `roots` with --no-install-recommends (as this machine resolves them)."""
    providers = {}
    for name, info in packages.items():
        for p in filter(None, (x.strip().split(" ")[0] for x in info["provides"].split(","))):
            providers.setdefault(p, []).append(name)
    seen, todo = set(), [r for r in roots if r in packages]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for clause in filter(None, (c.strip() for c in packages[name]["depends"].split(","))):
            # "a (>= 1) | b": apt takes the first alternative it can; here that is
            # the first one installed (directly or through a Provides).
            for alternative in clause.split("|"):
                dep = alternative.strip().split(" ")[0].split(":")[0]
                chosen = [dep] if dep in packages else providers.get(dep, [])[:1]
                if chosen:
                    todo.extend(chosen)
                    break
    return seen


def file_owners():
    """{canonical path: package} from dpkg's file lists."""
    owners = {}
    for lst in glob.glob("/var/lib/dpkg/info/*.list"):
        package = os.path.basename(lst)[:-len(".list")].split(":")[0]
        with open(lst, errors="replace") as f:
            for line in f:
                path = line.rstrip("\n")
                if path and path != "/.":
                    owners.setdefault(canonical(path), package)
    return owners


def used_files(build_dir):
    """Absolute paths of system files the build read, with what read them."""
    used = {}

    def add(path, why):
        if os.path.isabs(path) and not path.startswith((SOURCE_DIR + "/", os.path.abspath(build_dir) + "/")):
            used.setdefault(os.path.normpath(path), why)

    ninja_file = os.path.join(build_dir, "build.ninja")
    with open(ninja_file) as f:
        text = f.read()
    m = re.search(r"^build build\.ninja: RERUN_CMAKE [^|\n]*\|(.*)$", text, re.M)
    if not m:
        sys.exit(f"check_build_inputs: {ninja_file}: no RERUN_CMAKE rule (not a Ninja build?)")
    for path in m.group(1).split():
        add(path, "read by CMake at configure")

    deps = subprocess.run(["ninja", "-C", build_dir, "-t", "deps"], check=True,
                          capture_output=True, text=True).stdout
    target = None
    for line in deps.splitlines():
        if line and not line.startswith(" "):
            target = line.split(":")[0]
        elif line.strip():
            add(line.strip(), f"included by {target}")

    # Link lines: full paths, and -lNAME resolved as the linker would.
    commands = subprocess.run(["ninja", "-C", build_dir, "-t", "commands"], check=True,
                              capture_output=True, text=True).stdout
    for command in commands.splitlines():
        if " -o " not in command or " -c " in command:
            continue
        for token in shlex.split(command.split("&&")[-1] if "&&" in command else command):
            if token.startswith("-l") and len(token) > 2:
                for ext in (".so", ".a"):
                    found = subprocess.run(["c++", f"-print-file-name=lib{token[2:]}{ext}"],
                                           capture_output=True, text=True).stdout.strip()
                    if os.path.isabs(found):
                        add(found, f"linked as {token}")
                        break
            elif token.startswith("-Wl,"):
                continue
            elif re.search(r"\.(so(\.[0-9.]+)?|a)$", token) and os.path.isabs(token):
                add(token, "linked")

    # What CMake's find_library/find_path/find_program found (files, not directories).
    with open(os.path.join(build_dir, "CMakeCache.txt")) as f:
        for line in f:
            m = re.match(r"^([A-Za-z0-9_.+-]+):(FILEPATH)=(/.+)$", line.strip())
            if m and os.path.isfile(m.group(3)):
                add(m.group(3), f"found by CMake as {m.group(1)}")
    return used


def setup_packages(without):
    out = subprocess.run(["bash", os.path.join(SOURCE_DIR, "scripts", "setup.sh"), "--print-packages"],
                         check=True, capture_output=True, text=True).stdout
    return [p for p in out.split() if p not in without]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("build_dir")
    parser.add_argument("--without", action="append", default=[])
    args = parser.parse_args()

    packages = read_dpkg_status()
    base = [n for n, i in packages.items() if i["essential"] or i["priority"] in ("required", "important")]
    wanted = setup_packages(set(args.without))
    allowed = dependency_closure(base + ["ca-certificates"] + wanted, packages)
    owners = file_owners()

    problems, checked = [], 0
    for path, why in sorted(used_files(args.build_dir).items()):
        hop, hops = path, 0
        while True:
            checked += 1
            owner = owners.get(canonical(hop))
            if owner is None and not os.path.islink(hop) and os.path.exists(hop):
                problems.append(f"{hop} ({why}) belongs to no Debian package")
            elif owner is not None and owner not in allowed:
                problems.append(f"{hop} ({why}) is in {owner}, which scripts/setup.sh does not install "
                                f"(nor any package it installs depends on it)")
            if not os.path.islink(hop) or hops > 40:
                break
            hop, hops = os.path.join(os.path.dirname(hop), os.readlink(hop)), hops + 1
    for p in problems:
        print("check_build_inputs: " + p)
    print(f"check_build_inputs: {checked} system files the build used, from "
          f"{len(wanted)} setup packages and their {len(allowed)}-package closure: "
          f"{len(problems)} outside it")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
