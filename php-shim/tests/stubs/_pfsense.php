<?php
/*
 * Models of the pfSense machinery around a package, per profile
 * (_record.php), for the tests to drive the shim the way pfSense does.
 * Each model names the file and commit it follows; none is pfSense's code.
 *
 *  awsha_stub_install_package()     pkg-utils.inc install_package_xml()
 *                                   (master 9363ac5b86; same in RELENG_2_7_2):
 *                                   info.xml's <package> into
 *                                   installedpackages/package[], the GUI XML's
 *                                   include_file and <plugins> into that
 *                                   entry, its <service> into
 *                                   installedpackages/service[].
 *  pkg_call_plugins()               pfsense-utils.inc pkg_call_plugins()
 *                                   (same in all three): for every package
 *                                   entry with an <item><type> equal to the
 *                                   hook, require its include_file and call
 *                                   <configurationfile basename>_<hook>();
 *                                   an undefined function is a fatal error.
 *                                   include_file /usr/local/pkg/… resolves to
 *                                   the work tree here.
 *  awsha_stub_sync_package()        pkg-utils.inc sync_package(): require the
 *                                   include file, eval the GUI XML's
 *                                   custom_php_resync_config_command.
 *  start_service() & co.            service-utils.inc (service-utils.inc stub).
 *  awsha_stub_rc_start_packages()   src/etc/rc.start_packages: per package,
 *                                   sync_package() then
 *                                   start_service(<internal_name>, true).
 *  awsha_stub_rc_filter_synchronize()
 *                                   src/etc/rc.filter_synchronize: nothing
 *                                   without hasync/synchronizetoip or any
 *                                   synchronize* flag; 2.8 and current add
 *                                   the paths plugin_xmlrpc_send returns
 *                                   (9974d8f7fa); carp_sync_xml() copies the
 *                                   config AFTER the hook, sends
 *                                   restore_config_section, then writes the
 *                                   config when hasync/new_password is set.
 *  awsha_stub_xmlrpc_restore_config_section()
 *                                   xmlrpc.php restore_config_section() on the
 *                                   peer: 2.7.2 merges everything; 2.8/current
 *                                   take installedpackages aside, merge core
 *                                   sections, call plugin_xmlrpc_recv and write
 *                                   its path => value pairs — on 2.8 the loop
 *                                   variable is $sections itself (a3671d9bb6
 *                                   xmlrpc.php:579, fixed by 7a9b526322), so
 *                                   after it isset($sections['virtualip']) is
 *                                   false and the synced CARP VIPs are written
 *                                   but never configured on the interfaces;
 *                                   then plugin_xmlrpc_recv_done.
 *  pfsense_xmlrpc_client            xmlrpc_client.inc stub: exec_php and
 *                                   restore_config_section reach the "peer",
 *                                   a second config (in-process:
 *                                   $GLOBALS['__stub_peer'], a child process:
 *                                   the JSON file AWSHA_STUB_PEER_CONFIG).
 */
require_once(__DIR__ . '/_record.php');

function awsha_stub_pkg_file($path) {
	if (strncmp($path, '/usr/local/pkg/', 15) === 0 && defined('AWSHA_PKG_DIR')) {
		return AWSHA_PKG_DIR . '/' . substr($path, 15);
	}
	if (strncmp($path, '/usr/local/pkg/', 15) === 0) {
		return dirname(__DIR__, 2) . '/files/usr/local/pkg/' . substr($path, 15);
	}
	return $path;
}

/* An XML element as pfSense's parser returns it (list tags always lists; enough for package XML). */
function awsha_stub_xml_array(SimpleXMLElement $el) {
	static $list_tags = array('item', 'service', 'menu', 'tab', 'field', 'columnitem', 'config', 'package', 'row');
	if ($el->count() === 0) {
		return trim((string)$el);
	}
	$out = array();
	foreach ($el->children() as $name => $child) {
		if (in_array($name, $list_tags, true)) {
			$out[$name][] = awsha_stub_xml_array($child);
		} else {
			$out[$name] = awsha_stub_xml_array($child);
		}
	}
	return $out;
}

function awsha_stub_package_gui() {
	$root = dirname(__DIR__, 2);
	return awsha_stub_xml_array(simplexml_load_file("{$root}/files/usr/local/pkg/awsha.xml"));
}

function awsha_stub_install_package() {
	$root = dirname(__DIR__, 2);
	$info = awsha_stub_xml_array(simplexml_load_file("{$root}/files/usr/local/share/pfSense-pkg-awsha/info.xml"));
	$entry = $info['package'][0];
	$gui = awsha_stub_package_gui();
	if (isset($gui['include_file'])) {
		$entry['include_file'] = $gui['include_file'];
	}
	if (isset($gui['plugins'])) {
		$entry['plugins'] = $gui['plugins'];
	}
	$packages = array_values(array_filter(config_get_path('installedpackages/package', array()), function ($p) use ($entry) {
		return ($p['name'] ?? '') !== $entry['name'];
	}));
	$packages[] = $entry;
	config_set_path('installedpackages/package', $packages);
	$services = config_get_path('installedpackages/service', array());
	foreach ((array)($gui['service'] ?? array()) as $service) {
		foreach ($services as $existing) {
			if (trim($existing['name']) === trim($service['name'])) {
				continue 2;
			}
		}
		$services[] = $service;
	}
	config_set_path('installedpackages/service', $services);
	return $entry;
}

function pkg_call_plugins($plugin_type, $plugin_params) {
	awsha_stub_record('pkg_call_plugins', array($plugin_type));
	$results = array();
	foreach (config_get_path('installedpackages/package', array()) as $package) {
		foreach ((array)($package['plugins']['item'] ?? array()) as $plugin) {
			if (!is_array($plugin) || ($plugin['type'] ?? '') !== $plugin_type) {
				continue;
			}
			$include = awsha_stub_pkg_file($package['include_file'] ?? '');
			if (!is_file($include)) {
				continue;
			}
			require_once($include);
			$pkgname = basename($package['configurationfile'], '.xml');
			$results[$pkgname] = call_user_func("{$pkgname}_{$plugin_type}", $plugin_params);
		}
	}
	return $results;
}

function awsha_stub_sync_package() {
	$gui = awsha_stub_package_gui();
	require_once(awsha_stub_pkg_file($gui['include_file']));
	if (!empty($gui['custom_php_resync_config_command'])) {
		eval($gui['custom_php_resync_config_command']);
	}
}

function awsha_stub_rc_start_packages() {
	foreach (config_get_path('installedpackages/package', array()) as $package) {
		awsha_stub_sync_package();
		start_service($package['internal_name'] ?? $package['name'], true);
	}
}

/* ---------------- XMLRPC ---------------- */

/*
 * Runs $fn with $GLOBALS['config'] set to the peer's config, and the peer's
 * environment ($GLOBALS['__stub_peer_env'], or the JSON object
 * AWSHA_STUB_PEER_ENV in a child process: its own run directory, its own
 * answers of the fake binary); keeps what it leaves in the config.
 */
function awsha_stub_on_peer(callable $fn) {
	$env = $GLOBALS['__stub_peer_env'] ?? json_decode((string)getenv('AWSHA_STUB_PEER_ENV'), true);
	$saved_env = array();
	foreach ((array)$env as $name => $value) {
		$saved_env[$name] = getenv($name);
		putenv("{$name}={$value}");
	}
	try {
		return awsha_stub_on_peer_config($fn);
	} finally {
		foreach ($saved_env as $name => $value) {
			putenv($value === false ? $name : "{$name}={$value}");
		}
	}
}

function awsha_stub_on_peer_config(callable $fn) {
	$file = getenv('AWSHA_STUB_PEER_CONFIG');
	$in_file = !defined('AWSHA_STUB_IN_PHPUNIT') && $file !== false && $file !== '';
	if ($in_file) {
		$peer = is_file($file) ? (json_decode((string)file_get_contents($file), true) ?: array()) : array();
	} else {
		if (!isset($GLOBALS['__stub_peer']) || !is_array($GLOBALS['__stub_peer'])) {
			throw new RuntimeException('no XMLRPC peer in this test ($GLOBALS[\'__stub_peer\'])');
		}
		$peer = $GLOBALS['__stub_peer'];
	}
	$mine = $GLOBALS['config'];
	$node = $GLOBALS['__stub_node'] ?? null;
	$GLOBALS['config'] = $peer;
	$GLOBALS['__stub_node'] = 'peer';
	try {
		return $fn();
	} finally {
		$peer = $GLOBALS['config'];
		$GLOBALS['config'] = $mine;
		$GLOBALS['__stub_node'] = $node;
		if ($in_file) {
			file_put_contents($file, json_encode($peer));
		} else {
			$GLOBALS['__stub_peer'] = $peer;
		}
	}
}

/* xmlrpc.php exec_php(): eval($code); return $toreturn if set and true, else true. */
function awsha_stub_xmlrpc_exec_php($code) {
	eval($code);
	if (!empty($toreturn)) {
		return $toreturn;
	}
	return true;
}

function awsha_stub_xmlrpc_restore_config_section(array $sections) {
	$old = $GLOBALS['config'];
	$hooks = awsha_stub_has('xmlrpc_hooks');
	$pkg_sections = array('installedpackages' => array());
	if ($hooks) {
		$pkg_sections = array('installedpackages' => $sections['installedpackages'] ?? array());
		unset($sections['installedpackages']);
	}
	foreach ($sections as $key => $value) {
		$GLOBALS['config'][$key] = $value;
	}
	$pkg_merged_paths = array();
	if ($hooks) {
		$pkg_merged_paths = pkg_call_plugins('plugin_xmlrpc_recv', $pkg_sections);
		if (awsha_stub_has('recv_sections_bug')) {
			foreach ($pkg_merged_paths as $pkg => $sections) {
				if (!is_array($sections)) {
					continue;
				}
				foreach ($sections as $path => $section) {
					config_set_path($path, $section);
				}
			}
		} else {
			foreach ($pkg_merged_paths as $pkg => $pkg_merged_sections) {
				if (!is_array($pkg_merged_sections)) {
					continue;
				}
				foreach ($pkg_merged_sections as $path => $section) {
					if ($path !== 'xmlrpc_recv_result') {
						config_set_path($path, $section);
					}
				}
			}
		}
	}
	write_config('Merged in config from XMLRPC client.');
	/* xmlrpc.php: the CARP VIPs are configured on the interfaces only when $sections says so. */
	if (isset($sections['virtualip'])) {
		$before = array();
		foreach ((array)($old['virtualip']['vip'] ?? array()) as $vip) {
			$before[($vip['interface'] ?? '') . '_vip' . ($vip['vhid'] ?? '')] = $vip;
		}
		foreach ((array)config_get_path('virtualip/vip', array()) as $vip) {
			if (($vip['mode'] ?? '') === 'carp' && ($before[$vip['interface'] . '_vip' . $vip['vhid']] ?? null) != $vip) {
				awsha_stub_record('interface_carp_configure', array($vip['interface'], $vip['vhid'], $vip['advskew'] ?? null));
			}
		}
	}
	if ($hooks) {
		pkg_call_plugins('plugin_xmlrpc_recv_done', awsha_stub_has('recv_sections_bug') ? array() : $pkg_merged_paths);
	}
	return true;
}

/* rc.filter_synchronize on the primary; returns what was sent (null when nothing). */
function awsha_stub_rc_filter_synchronize() {
	$hasync = config_get_path('hasync', array());
	if (empty($hasync['synchronizetoip'])) {
		return null;
	}
	$sections = array();
	if (!empty($hasync['synchronizevirtualip'])) {
		$sections[] = 'virtualip';
	}
	if (!empty($hasync['synchronizerules'])) {
		$sections[] = 'filter';
	}
	if (empty($sections)) {
		return null;
	}
	if (awsha_stub_has('xmlrpc_hooks')) {
		foreach (pkg_call_plugins('plugin_xmlrpc_send', array()) as $pkg => $result) {
			if (!is_array($result)) {
				log_error("Package {$pkg} returned non-array from its plugin_xmlrpc_send handler");
				continue;
			}
			$sections = array_merge($sections, $result);
		}
	}
	$copy = config_get_path('');
	$xml = array();
	foreach ($sections as $path) {
		$value = $copy;
		foreach (array_filter(explode('/', $path), 'strlen') as $part) {
			$value = (is_array($value) && array_key_exists($part, $value)) ? $value[$part] : array();
		}
		$el = &$xml;
		foreach (array_filter(explode('/', $path), 'strlen') as $part) {
			$el = &$el[$part];
		}
		$el = $value;
		unset($el);
	}
	$client = new pfsense_xmlrpc_client();
	$resp = $client->xmlrpc_method('restore_config_section', $xml, 900);
	if ($resp !== null && config_get_path('hasync/new_password')) {
		config_set_path('hasync/password', config_get_path('hasync/new_password'));
		config_del_path('hasync/new_password');
		write_config('Update XMLRPC sync password.');
	}
	return $xml;
}

/* ---------------- GUI ---------------- */

/* guiconfig.inc print_info_box() (master 9363ac5b86): the message goes into the page as given (HTML). */
if (!function_exists('print_info_box')) {
	function print_info_box($msg, $class = "alert-warning", $btnname = "close", $btntext = "", $btnicon = "", $btnclass = "default") {
		awsha_stub_record('print_info_box', array($msg, $class));
		if (strpos($class, 'alert-') !== 0) {
			$class = "alert-{$class}";
		}
		echo "<div class=\"alert {$class} clearfix\" role=\"alert\"><div class=\"pull-left\">{$msg}</div></div>";
	}
}
