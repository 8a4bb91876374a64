"""An nginx main config around one site file, for running a shipped proxy config as an unprivileged test
nginx: everything (pid, logs, temp dirs) under the test's folder, in the foreground."""

from __future__ import annotations

import os
from pathlib import Path

TEMP_DIRS = ("fastcgi", "uwsgi", "scgi", "proxy")


def write_nginx_main(folder: Path, site: Path) -> Path:
    """`folder`/nginx.conf including `site`; its temp dirs are made under `folder`."""
    for sub in ("body", *TEMP_DIRS):
        (folder / sub).mkdir()
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers must reach the temp dirs under folder
    main = folder / "nginx.conf"
    main.write_text(
        f"{user}worker_processes 1;\ndaemon off;\npid {folder}/nginx.pid;\n"
        f"error_log {folder}/error.log;\n"
        "events {}\nhttp {\n  access_log off;\n"
        + "".join(f"  {sub}_temp_path {folder / sub};\n" for sub in TEMP_DIRS)
        + f"  client_body_temp_path {folder / 'body'};\n  include {site};\n}}\n"
    )
    return main
