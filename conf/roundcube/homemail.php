<?php
/**
 * homemail - driver of Roundcube's password plugin for homemail's virtual
 * accounts (/etc/homemail/users).
 *
 * The change itself is done by /usr/lib/homemail/homemail-passwd, a small
 * setuid-root helper that only the web server's group may run: it verifies
 * the current password through Dovecot's auth (so a wrong one is counted in
 * homemail's lockout), checks the new one's strength, hashes it with the
 * configured scheme and rewrites the users file under its lock
 * (docs/domains.md, "Password changes").
 *
 * No shell is ever involved: proc_open() gets an argument vector, and the
 * user name and both passwords travel on the helper's standard input, one
 * per line, never on its command line or in its environment.
 *
 * Installed as plugins/password/drivers/homemail.php (a link made by the
 * playbook); selected with $config['password_driver'] = 'homemail'.
 */
class rcube_homemail_password
{
    public function save($curpass, $passwd, $username)
    {
        $rcmail = rcmail::get_instance();
        $helper = $rcmail->config->get('password_homemail_helper', '/usr/lib/homemail/homemail-passwd');
        foreach ([$username, $curpass, $passwd] as $v) {
            if (!is_string($v) || $v === '' || strpbrk($v, "\0\r\n") !== false) {
                return ['code' => PASSWORD_CONSTRAINT_VIOLATION,
                        'message' => 'Line breaks are not allowed in a password.'];
            }
        }
        $res = self::run($helper, [], "$username\n$curpass\n$passwd\n");
        switch ($res['code']) {
            case 0:
                return PASSWORD_SUCCESS;
            case 65:    // the new password is too weak: the helper says why
                return ['code' => PASSWORD_CONSTRAINT_VIOLATION, 'message' => $res['line']];
            case 77:    // current password wrong, or the account is locked
                return ['code' => PASSWORD_ERROR, 'message' => $res['line']];
            case 75:
                return PASSWORD_CONNECT_ERROR;
            default:
                rcube::raise_error(['code' => 600, 'file' => __FILE__, 'line' => __LINE__,
                    'message' => "Password plugin: homemail-passwd exited with {$res['code']}: {$res['line']}"],
                    true, false);
                return PASSWORD_ERROR;
        }
    }

    /**
     * Run the helper with an argument vector (no shell), the browser's
     * address as --rip, and $input on its standard input.  Returns the exit
     * code and the first line it printed.
     */
    public static function run($helper, array $args, $input)
    {
        $argv = array_merge([$helper], $args);
        $ip = rcube_utils::remote_addr();
        if (is_string($ip) && filter_var($ip, FILTER_VALIDATE_IP) !== false) {
            $argv[] = '--rip';
            $argv[] = $ip;
        }
        $spec = [0 => ['pipe', 'r'], 1 => ['pipe', 'w'], 2 => ['pipe', 'w']];
        $proc = proc_open($argv, $spec, $pipes, '/', []);
        if (!is_resource($proc)) {
            return ['code' => -1, 'line' => 'cannot run the password helper'];
        }
        fwrite($pipes[0], $input);
        fclose($pipes[0]);
        $out = stream_get_contents($pipes[1], 4096);
        $err = stream_get_contents($pipes[2], 4096);
        fclose($pipes[1]);
        fclose($pipes[2]);
        $code = proc_close($proc);
        $line = trim(strtok((string) $out, "\n") ?: (string) $err);
        return ['code' => $code, 'line' => $line];
    }
}
