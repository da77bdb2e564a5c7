#!/usr/bin/env bash
# Height in CSS px of an HTML page at 1,400 px width in headless Chromium, and a full-page screenshot.
# usage: bench/page_height.sh PAGE.html [OUT.png]   (needs `chromium`: apt-get install -y chromium)
set -euo pipefail
page=$(realpath "$1"); out=${2:-}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# a copy that writes its own height into the DOM once every image has loaded
sed 's#</body>#<script>addEventListener("load",()=>{document.body.setAttribute("data-height",document.documentElement.scrollHeight)})</script></body>#' \
  "$page" > "$tmp/p.html"
flags=(--headless --no-sandbox --disable-gpu --hide-scrollbars --virtual-time-budget=10000)
h=$(chromium "${flags[@]}" --window-size=1400,900 --dump-dom "file://$tmp/p.html" 2>/dev/null \
    | grep -o 'data-height="[0-9]*"' | grep -o '[0-9]*')
echo "height_px=$h"
if [ -n "$out" ]; then
  chromium "${flags[@]}" --window-size=1400,"$h" --screenshot="$out" "file://$tmp/p.html" >/dev/null 2>&1
  echo "screenshot=$out"
fi
