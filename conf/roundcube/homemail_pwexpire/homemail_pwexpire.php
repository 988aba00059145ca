<?php
/**
 * homemail_pwexpire - Roundcube plugin: an account whose password an admin
 * expired (`homemail-user passwd --expire`) is taken to the password form
 * right after its login and kept there until the password is changed.
 *
 * Dovecot refuses such an account's IMAP, POP3 and SMTP logins with
 * "Password expired: change it in the webmail" except for the webmail on
 * the mail host itself, so the webmail is where the change happens
 * (docs/domains.md, "Password changes").  After the login this plugin asks
 * homemail-passwd --check (user and password on its standard input, no
 * shell) whether the password is expired; if so it sets the password
 * plugin's own 'password_expires' session flag (which shows "Your password
 * has expired, you have to change it now!") and sends every request of the
 * session to the form until the password plugin, after a successful
 * change, removes that flag.
 */
class homemail_pwexpire extends rcube_plugin
{
    public function init()
    {
        $this->add_hook('login_after', [$this, 'login_after']);
        $this->add_hook('startup', [$this, 'startup']);
    }

    public function login_after($args)
    {
        $rcmail = rcmail::get_instance();
        $user = (string) $rcmail->get_user_name();
        $pass = (string) $rcmail->decrypt($_SESSION['password'] ?? '');
        if (strpos($user, '@') === false || strpbrk($user . $pass, "\0\r\n") !== false) {
            return $args;   // system accounts and odd input: no users-file flag
        }
        $helper = $rcmail->config->get('password_homemail_helper', '/usr/lib/homemail/homemail-passwd');
        if (!class_exists('rcube_homemail_password', false)) {
            require_once '/usr/share/homemail/roundcube/homemail.php';
        }
        $res = rcube_homemail_password::run($helper, ['--check'], "$user\n$pass\n");
        if ($res['code'] === 0 && $res['line'] === 'expired') {
            $_SESSION['password_expires'] = 1;
            $_SESSION['homemail_pwexpired'] = 1;
            $args['_task'] = 'settings';
            $args['_action'] = 'plugin.password';
        }
        return $args;
    }

    public function startup($args)
    {
        if (empty($_SESSION['homemail_pwexpired'])) {
            return $args;
        }
        if (empty($_SESSION['password_expires'])) {     // changed: free again
            rcmail::get_instance()->session->remove('homemail_pwexpired');
            return $args;
        }
        $allowed = ($args['task'] === 'settings' && strpos((string) $args['action'], 'plugin.password') === 0)
            || $args['task'] === 'logout' || $args['task'] === 'login'
            || $args['action'] === 'keep-alive' || $args['action'] === 'refresh';
        if (!$allowed) {
            // a fresh request, so that the password plugin (loaded for the
            // settings task only) is there to answer it
            rcmail::get_instance()->output->redirect(['_task' => 'settings', '_action' => 'plugin.password']);
        }
        return $args;
    }
}
