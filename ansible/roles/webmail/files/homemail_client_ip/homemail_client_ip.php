<?php
/**
 * homemail_client_ip - Roundcube plugin: the browser's address becomes the
 * remote address (rip) of the webmail's IMAP logins, so homemail's lockout
 * counts webmail failures per browser instead of per webmail host.
 *
 * Roundcube 1.6 connects to Dovecot from the web server's own address and
 * sends its IMAP ID only after LOGIN, but Dovecot's imap-login takes
 * x-originating-ip from ID only before authentication, and only from a
 * client in login_trusted_networks (the playbook trusts exactly the webmail
 * host's address there). rcube_imap_generic::connect() sends the connection
 * option 'preauth_ident' as an ID command before it authenticates; this
 * plugin sets that option from the storage_connect hook, on every IMAP
 * connection (the login and each later request).
 *
 * The address is rcube_utils::remote_addr(): the TCP peer of the HTTP
 * request, or X-Forwarded-For/X-Real-IP only from a proxy listed in
 * proxy_whitelist (empty in the lab, so a browser cannot choose it).
 * Installed by ansible/roles/webmail; see docs/auth.md, "Webmail".
 */
class homemail_client_ip extends rcube_plugin
{
    public function init()
    {
        $this->add_hook('storage_connect', [$this, 'storage_connect']);
    }

    public function storage_connect($args)
    {
        $ip = rcube_utils::remote_addr();
        if (!is_string($ip) || filter_var($ip, FILTER_VALIDATE_IP) === false) {
            return $args;   // no usable address: Dovecot sees the web server's
        }
        $ident = (array) ($args['preauth_ident'] ?? []);
        $ident['x-originating-ip'] = $ip;
        $port = (string) ($_SERVER['REMOTE_PORT'] ?? '');
        if (preg_match('/^[0-9]{1,5}$/', $port) && (int) $port > 0 && (int) $port < 65536) {
            $ident['x-originating-port'] = $port;
        }
        $args['preauth_ident'] = $ident;
        return $args;
    }
}
