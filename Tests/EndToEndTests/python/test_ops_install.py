"""`scripts/install --prefix DIR` (issue 17) into a temporary prefix. The
installed binaries run, their man pages render with `man -l`, the completion
scripts are there for bash, zsh and fish, and the systemd units verify against
the installed binary and man pages.

By default the install uses `--configuration debug`, which reuses the debug
build scripts/test made (seconds, where a release build takes ten minutes on
two busy cores). STATECAST_INSTALL_CONFIGURATION=release runs the shipping
path, and with it the check that the binaries need no Swift toolchain
libraries. The install runs once per module (module-scoped fixture).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO_ROOT, HostProcess, launch, stop_all

PRODUCTS = ["statecast-host", "statecast-viewer"]
CONFIGURATION = os.environ.get("STATECAST_INSTALL_CONFIGURATION", "debug")
INSTALL_TIMEOUT = 3000 if CONFIGURATION == "release" else 600


@pytest.fixture(scope="module")
def prefix(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("prefix") / "usr"
    result = subprocess.run([str(REPO_ROOT / "scripts" / "install"), "--prefix", str(target),
                             "--configuration", CONFIGURATION, "--no-setup"],
                            capture_output=True, text=True, timeout=INSTALL_TIMEOUT, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return target


@pytest.mark.timeout(INSTALL_TIMEOUT + 60)
def test_install_puts_binaries_pages_completions_and_deploy_files_under_the_prefix(prefix):
    expected = [
        "bin/statecast-host", "bin/statecast-viewer",
        "share/man/man1/statecast-host.1", "share/man/man1/statecast-viewer.1",
        "share/bash-completion/completions/statecast-host", "share/zsh/site-functions/_statecast-viewer",
        "share/fish/vendor_completions.d/statecast-host.fish",
        "share/doc/statecast/LICENSE", "share/doc/statecast/README.md",
        "share/statecast/deploy/statecast-host.service", "share/statecast/deploy/nginx/statecast.conf",
    ]
    missing = [path for path in expected if not (prefix / path).is_file()]
    assert not missing, missing
    for product in PRODUCTS:
        assert os.access(prefix / "bin" / product, os.X_OK)


@pytest.mark.timeout(INSTALL_TIMEOUT + 60)
def test_installed_binaries_print_their_version(prefix):
    result = subprocess.run([str(prefix / "bin" / "statecast-host"), "--version"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and result.stdout.startswith("statecast-host "), result


@pytest.mark.timeout(INSTALL_TIMEOUT + 60)
@pytest.mark.skipif(CONFIGURATION != "release",
                    reason="debug binaries load the toolchain's Swift runtime; STATECAST_INSTALL_CONFIGURATION=release checks this")
def test_installed_release_binaries_need_no_swift_toolchain(prefix):
    for product in PRODUCTS:
        binary = prefix / "bin" / product
        linked = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, timeout=30).stdout
        assert "libswiftCore" not in linked and "libFoundation" not in linked, linked


@pytest.mark.timeout(INSTALL_TIMEOUT + 60)
def test_the_installed_host_serves(prefix):
    hosts: list[HostProcess] = []
    try:
        host = launch([str(prefix / "bin" / "statecast-host"), "serve", "--bind", "127.0.0.1", "--port", "0"], hosts)
        assert host.status()["running"] is True
    finally:
        stop_all(hosts)


@pytest.mark.timeout(INSTALL_TIMEOUT + 60)
@pytest.mark.parametrize("product", PRODUCTS)
def test_man_renders_the_installed_page(product, prefix):
    if shutil.which("man") is None:
        pytest.fail("man is not installed; scripts/setup installs it (apt-get install man-db)")
    page = prefix / "share" / "man" / "man1" / f"{product}.1"
    result = subprocess.run(["man", "-l", str(page)], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "MANPAGER": "cat", "PAGER": "cat", "MANWIDTH": "100", "LC_ALL": "C.UTF-8"})
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr  # groff warnings would mean a broken page
    text = re.sub(r".\x08", "", result.stdout)
    assert re.search(rf"^NAME\s*$", text, re.M) and product in text, text[:500]
    assert "--help" in text or "--log-level" in text, text[:2000]
    if product == "statecast-host":
        assert "serve" in text and "relay" in text, text[:2000]


@pytest.mark.timeout(INSTALL_TIMEOUT + 60)
@pytest.mark.parametrize("product", PRODUCTS)
def test_completion_scripts_name_the_commands(product, prefix):
    bash = prefix / "share" / "bash-completion" / "completions" / product
    checked = subprocess.run(["bash", "-n", str(bash)], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr
    assert re.search(rf"^complete .*-F _{product} {product}$", bash.read_text(), re.M), bash.read_text()[-300:]
    assert (prefix / "share" / "zsh" / "site-functions" / f"_{product}").read_text().startswith(f"#compdef {product}")
    assert f"complete -c '{product}'" in (prefix / "share" / "fish" / "vendor_completions.d" / f"{product}.fish").read_text() \
        or f"complete -c {product}" in (prefix / "share" / "fish" / "vendor_completions.d" / f"{product}.fish").read_text()


@pytest.mark.timeout(INSTALL_TIMEOUT + 60)
def test_systemd_units_verify_against_the_installed_binary_and_man_pages(prefix, tmp_path):
    units = tmp_path / "units"
    units.mkdir()
    for name in ["statecast-host.service", "statecast-relay@.service"]:
        text = (prefix / "share" / "statecast" / "deploy" / name).read_text()
        (units / name).write_text(text.replace("/usr/local/bin/", f"{prefix}/bin/"))
    result = subprocess.run(["systemd-analyze", "verify", str(units / "statecast-host.service"),
                             str(units / "statecast-relay@show.service")],
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, "MANPATH": str(prefix / "share" / "man")})
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr
