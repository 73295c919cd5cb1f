# Shell functions the .deb maintainer scripts and the .rpm scriptlets share (POSIX sh).
# packaging/dist pastes this file where a script says #IMAP_SERVICES_FUNCTIONS#: a
# postrm runs after the package's files are gone, so it cannot source them.
#
# /etc/services: imap 143, imaps 993, pop3 110, pop3s 995 (tcp) are added only where no
# line has that port/tcp already, never twice; each line added is recorded in
# IMAP_ADDED, and removal takes out exactly those lines (an admin's own are left).

IMAP_SERVICES=/etc/services
IMAP_ADDED=/var/lib/imap/services-added

imap_services_add() {
    mkdir -p "${IMAP_ADDED%/*}"
    if [ ! -e "$IMAP_SERVICES" ]; then
        : > "$IMAP_SERVICES"
        chmod 644 "$IMAP_SERVICES"
        echo "#created" >> "$IMAP_ADDED"
    fi
    for entry in "imap 143 imap2" "imaps 993" "pop3 110 pop-3" "pop3s 995"; do
        set -- $entry
        # A line for this port/tcp, under any name, outside comments.
        if awk -v pp="$2/tcp" '{ sub(/#.*/, "") } $2 == pp { found = 1 } END { exit !found }' \
            "$IMAP_SERVICES"; then
            continue
        fi
        line=$(printf '%s\t\t%s/tcp\t\t%s\t\t# added by package imap' "$1" "$2" "${3:-}")
        # A file whose last line has no newline gets one first (and loses it again).
        if [ -s "$IMAP_SERVICES" ] && [ -n "$(tail -c 1 "$IMAP_SERVICES")" ]; then
            echo >> "$IMAP_SERVICES"
            echo "#newline" >> "$IMAP_ADDED"
        fi
        printf '%s\n' "$line" >> "$IMAP_SERVICES"
        printf '%s\n' "$line" >> "$IMAP_ADDED"
    done
}

imap_services_remove() {
    [ -f "$IMAP_ADDED" ] || return 0
    if [ -f "$IMAP_SERVICES" ]; then
        tmp="$IMAP_SERVICES.imap-new"
        # A copy keeps owner and mode; the rename replaces the file in one step.
        cp -p "$IMAP_SERVICES" "$tmp"
        awk 'NR == FNR { added[$0] = 1; next } !($0 in added) || seen[$0]++' \
            "$IMAP_ADDED" "$IMAP_SERVICES" > "$tmp"
        if grep -qx '#newline' "$IMAP_ADDED" && [ -s "$tmp" ]; then
            head -c -1 "$tmp" > "$tmp.1" && cat "$tmp.1" > "$tmp" && rm -f "$tmp.1"
        fi
        if grep -qx '#created' "$IMAP_ADDED" && [ ! -s "$tmp" ]; then
            rm -f "$tmp" "$IMAP_SERVICES"
        else
            mv -f "$tmp" "$IMAP_SERVICES"
        fi
    fi
    rm -f "$IMAP_ADDED"
    rmdir "${IMAP_ADDED%/*}" 2>/dev/null || true
}

# A running xinetd reads /etc/xinetd.d again. Never an error: xinetd may be absent or
# stopped. Debian: invoke-rc.d (honours policy-rc.d); elsewhere SIGHUP, which is what
# xinetd.service's own reload sends.
imap_reload_xinetd() {
    pid=$(cat /run/xinetd.pid 2>/dev/null || cat /var/run/xinetd.pid 2>/dev/null) || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    if command -v invoke-rc.d >/dev/null 2>&1; then
        invoke-rc.d xinetd reload || true
    else
        kill -HUP "$pid" || true
    fi
}
