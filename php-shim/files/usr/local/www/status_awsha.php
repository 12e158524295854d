<?php
/*
 * status_awsha.php
 *
 * part of awsha (pfSense-pkg-awsha)
 *
 * Licensed under the Apache License, Version 2.0 (the "License");
 * you may not use this file except in compliance with the License.
 * You may obtain a copy of the License at
 *
 * http://www.apache.org/licenses/LICENSE-2.0
 *
 * Status > AWS High Availability: per VHID its CARP state and whether AWS
 * agrees, per resource where AWS points now and who wrote it last, the last
 * failover, the recent runs, and "Reconcile now".
 *
 * Laid out as pfSense's own status pages — modelled on pfsense/pfsense
 * src/usr/local/www/status_carp.php at 9363ac5b86 (master; RELENG_2_7_2
 * ec956d343e the same): guiconfig.inc first (authentication, and
 * csrf-magic, which refuses a POST without its token and adds the token to
 * every <form method="post"> of the page), $pgtitle, head.inc, panels,
 * foot.inc. The privilege is page-status-awsha (/etc/inc/priv/awsha.priv.inc).
 *
 * Requests:
 *  GET                        the page (awsha status and history, each
 *                             bounded to a few seconds)
 *  POST reconcile=now         starts "awsha-run --gui-result <id> reconcile"
 *                             in the background, then redirects to
 *                             ?reconcile=<id> (post/redirect/get)
 *  GET ?reconcile=<id>        the page with that run's result, or "waiting"
 *                             and a script that asks ?reconcile=<id>&poll=1
 *                             every second and shows the page again once
 *                             the result is there
 *  GET ?reconcile=<id>&poll=1 {"done": true|false}
 */

require_once("guiconfig.inc");
require_once("awsha_status.inc");

if ($_SERVER['REQUEST_METHOD'] === 'POST' && ($_POST['reconcile'] ?? '') === 'now') {
	$id = awsha_gui_run_start(array('reconcile'));
	header("Location: status_awsha.php?reconcile={$id}");
	exit;
}

$gui_id = null;
if (isset($_GET['reconcile']) && awsha_gui_result_id_valid($_GET['reconcile'])) {
	$gui_id = $_GET['reconcile'];
}
if (isset($_GET['poll'])) {
	header('Content-Type: application/json');
	[, $done] = ($gui_id === null) ? array(null, true) : awsha_gui_result_html($gui_id);
	echo json_encode(array('done' => $done));
	exit;
}

$report = awsha_status_read($error);
$history = awsha_history_read($history_error);

$pgtitle = array(gettext("Status"), gettext("AWS High Availability"));
$shortcut_section = "awsha";

include("head.inc");
echo awsha_status_page_html($report, $error, $history, $history_error, $gui_id);
include("foot.inc");
