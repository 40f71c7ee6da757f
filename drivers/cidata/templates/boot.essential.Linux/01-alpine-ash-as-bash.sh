#!/bin/sh
# calima boot step (Alpine only, plain mode too): the later steps and the host's readiness
# checks run `#!/bin/bash` scripts, and Alpine has no bash unless it is installed. Busybox's ash
# understands enough of bash for them (`set -o pipefail` included, `[[` not), so until bash is
# installed /bin/bash is a small script that hands over to ash. It cannot be a symlink: ash is
# itself a link to busybox, which would look for an applet called "bash".
set -eu

[ -f /etc/alpine-release ] || exit 0
[ ! -e /bin/bash ] || exit 0

# shellcheck disable=SC2016 # "$@" belongs to the script being written
printf '#!/bin/sh\nexec /bin/ash "$@"\n' >/bin/bash
chmod 755 /bin/bash
