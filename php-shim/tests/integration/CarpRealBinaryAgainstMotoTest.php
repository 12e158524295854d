<?php

/*
 * PLACEHOLDER — the lead writes this test (design.md §8: "at least one test
 * that runs the real binary from the shim against the servers above").
 * See README.md in this directory for what the shim provides for it.
 */
final class CarpRealBinaryAgainstMotoTest extends ShimTestCase {
	public function testPluginCarpRunsTheRealBinaryAgainstMoto(): void {
		$this->markTestIncomplete('placeholder: awsha_plugin_carp() -> awsha-run -> real awsha failover against moto + IMDS emulator (to be written by the lead)');
	}
}
