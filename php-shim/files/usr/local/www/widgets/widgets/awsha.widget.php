<?php
/*
 * awsha.widget.php
 *
 * part of awsha (pfSense-pkg-awsha)
 *
 * Licensed under the Apache License, Version 2.0 (the "License");
 * you may not use this file except in compliance with the License.
 * You may obtain a copy of the License at
 *
 * http://www.apache.org/licenses/LICENSE-2.0
 *
 * Dashboard widget "AWS High Availability": one line per VHID — green when
 * AWS points here and this node is MASTER, red when it has drifted (or a
 * resource could not be read), grey when this node is BACKUP.
 *
 * Modelled on pfsense/pfsense src/usr/local/www/widgets/widgets/
 * ntp_status.widget.php at 9363ac5b86 (and index.php there, whose
 * "Centralized widget refresh system" register_ajax() also exists in
 * RELENG_2_7_2 ec956d343e): index.php includes this file inside the
 * widget's panel; the body says "Updating…" and the first instance
 * registers an AJAX refresh, which index.php runs at once and then every
 * `freq` rounds. So the dashboard never waits for the binary: only the AJAX
 * request (POST ajax=ajax&awsha=status, csrf-magic's token added by its
 * JavaScript) runs "awsha --json status", bounded to a few seconds, and
 * answers the table — or a danger box saying why it failed. Its title and
 * link: /usr/local/www/widgets/include/widget-awsha.inc (as
 * net/pfSense-pkg-haproxy's widget-haproxy.inc in pfsense/FreeBSD-ports).
 * Access: the dashboard's own privileges (widgets/widgets/*.widget.php).
 */

require_once("guiconfig.inc");
require_once("awsha_status.inc");

if (!empty($_REQUEST['ajax']) && ($_REQUEST['awsha'] ?? '') === 'status') {
	$awsha_report = awsha_status_read($awsha_error);
	echo awsha_widget_html($awsha_report, $awsha_error);
	exit;
}

/* Seconds between refreshes: three widget periods (System > General Setup, default 10 s). A status costs EC2 reads. */
$awsha_widget_freq = 3 * max(1, (int)config_get_path('widgets/period', 10));
?>
<div id="awsha_widget_status">
	<table class="table table-striped table-hover">
		<tbody><tr><td><?=htmlspecialchars(gettext('Updating…'))?></td></tr></tbody>
	</table>
</div>
<div class="text-right"><small><a href="/status_awsha.php"><?=htmlspecialchars(gettext('Status > AWS High Availability'))?></a></small></div>
<?php if (!empty($widget_first_instance)): ?>
<script type="text/javascript">
//<![CDATA[
events.push(function() {
	function awsha_widget_callback(s) {
		$('[id="awsha_widget_status"]').prop('innerHTML', s);
	}
	var awshaObject = new Object();
	awshaObject.name = "AWS High Availability";
	awshaObject.url = "/widgets/widgets/awsha.widget.php";
	awshaObject.callback = awsha_widget_callback;
	awshaObject.parms = {ajax: "ajax", awsha: "status"};
	awshaObject.freq = <?=json_encode($awsha_widget_freq)?>;
	register_ajax(awshaObject);
});
//]]>
</script>
<?php endif; ?>
