# imap %post ($1: 1 install, 2 upgrade): register the services, make the default TLS
# pair if there is none, tell a running xinetd (imapd(8)).

#IMAP_SERVICES_FUNCTIONS#

imap_services_add

# The pair this build reads by default (imapd --settings: IMAP_TLS_CERT_FILE and
# IMAP_TLS_KEY_FILE): made once, self-signed for this host, as Fedora's Dovecot and
# Postfix make theirs; never replaced, so an admin's own pair stays.
cert=/etc/pki/tls/certs/imapd.pem
key=/etc/pki/tls/private/imapd.key
if [ ! -e "$cert" ] && [ ! -e "$key" ] && command -v openssl >/dev/null 2>&1; then
    mkdir -p "${cert%/*}" "${key%/*}"
    (umask 077 && openssl req -new -x509 -nodes -newkey rsa:3072 -days 3650 -sha256 \
        -subj "/CN=$(hostname -f 2>/dev/null || hostname)" -keyout "$key" -out "$cert" \
        >/dev/null 2>&1) || echo "imap: could not make $cert; STARTTLS is off until one exists" >&2
    [ ! -e "$cert" ] || chmod 644 "$cert"
fi

imap_reload_xinetd
exit 0
