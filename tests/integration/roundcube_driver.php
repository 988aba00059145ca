<?php
/*
 * roundcube_driver.php — runs homemail's password driver inside Roundcube's
 * own environment (Debian's roundcube-core, bootstrapped as its CLI tools
 * are) for test_vdomains_passwd.py: the driver's save(), or the helper call
 * the homemail_pwexpire plugin makes (--check).  Prints one JSON line.
 *
 * usage: php roundcube_driver.php HELPER save USER CURRENT NEW
 *        php roundcube_driver.php HELPER check USER PASSWORD
 */
define('INSTALL_PATH', '/var/lib/roundcube/');
require_once INSTALL_PATH . 'program/include/clisetup.php';
require_once INSTALL_PATH . 'plugins/password/password.php';   // PASSWORD_* codes
require_once __DIR__ . '/../../conf/roundcube/homemail.php';

$rc = rcmail::get_instance();
$rc->config->set('password_homemail_helper', $argv[1]);
if ($argv[2] === 'save') {
    $d = new rcube_homemail_password();
    echo json_encode(['result' => $d->save($argv[4], $argv[5], $argv[3])]), "\n";
} else {
    echo json_encode(rcube_homemail_password::run($argv[1], ['--check'], "$argv[3]\n$argv[4]\n")), "\n";
}
