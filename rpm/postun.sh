# imap %postun ($1: 0 erase, 1 upgrade): on erase take back exactly the /etc/services
# lines %post added; either way xinetd reads its (now changed) files again.

#IMAP_SERVICES_FUNCTIONS#

if [ "$1" -eq 0 ]; then
    imap_services_remove
fi
imap_reload_xinetd
exit 0
