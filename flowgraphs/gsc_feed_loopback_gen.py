#!/usr/bin/env python3
# -*- coding: utf-8 -*-

#
# SPDX-License-Identifier: GPL-3.0
#
# GNU Radio Python Flow Graph
# Title: gsc streaming loopback with a channel feed
# Author: gsc
# Description: gsc SISO streaming loopback whose channel realisations (one per frame) come from gsc_phy over ZMQ (Sionna TDL/CDL, RIS) or from local TDL draws; CFO and AWGN. Headless; ends when the frame source sends end-of-stream.
# GNU Radio version: 3.10.5.1

from flowgraphs import gsc_gr
from flowgraphs.gsc_ofdm import GridLayout
from gnuradio import gr
from gnuradio.filter import firdes
from gnuradio.fft import window
import sys
import signal
from argparse import ArgumentParser
from gnuradio.eng_arg import eng_float, intx
from gnuradio import eng_notation




class gsc_feed_loopback_gen(gr.top_block):

    def __init__(self, grid='default', tx_endpoint='tcp://127.0.0.1:5600', rx_endpoint='tcp://127.0.0.1:5601', feed_endpoint='', snr_db=20, cfo=0.1, channel='tdl-a', delay_spread_ns=100, gap_min=64, gap_max=512, seed=0, stats_dir=''):
        gr.top_block.__init__(self, "gsc streaming loopback with a channel feed", catch_exceptions=True)

        ##################################################
        # Parameters
        ##################################################
        self.grid = grid
        self.tx_endpoint = tx_endpoint
        self.rx_endpoint = rx_endpoint
        self.feed_endpoint = feed_endpoint
        self.snr_db = snr_db
        self.cfo = cfo
        self.channel = channel
        self.delay_spread_ns = delay_spread_ns
        self.gap_min = gap_min
        self.gap_max = gap_max
        self.seed = seed
        self.stats_dir = stats_dir

        ##################################################
        # Variables
        ##################################################
        self.layout = layout = GridLayout.load(grid)

        ##################################################
        # Blocks
        ##################################################

        self.tx = gsc_gr.ofdm_burst_tx(grid=grid, endpoint=tx_endpoint, bind=False, gap_min=gap_min, gap_max=gap_max, seed=seed, idle_zeros=False, stats_file=(stats_dir + '/tx.json') if stats_dir else '')
        self.rx = gsc_gr.ofdm_burst_rx(grid=grid, endpoint=rx_endpoint, bind=True, threshold=0.1, xcorr_threshold=0.35, max_int_cfo=4, time_interp="drift", send_timeout_ms=1000, pdus=False, stats_file=(stats_dir + '/rx.json') if stats_dir else '', curve_secret='', curve_authorized_dir='')
        self.channel_0 = gsc_gr.channel_feed(num_tx=1, num_rx=1, snr_db=snr_db, cfo=cfo, fft_size=layout.fft_size, endpoint=feed_endpoint, bind=False, wait_ms=2000, channel=channel, delay_spread_ns=delay_spread_ns, samp_rate=layout.samp_rate_hz, seed=(seed + 1), stats_file=(stats_dir + '/channel.json') if stats_dir else '')


        ##################################################
        # Connections
        ##################################################
        self.connect((self.channel_0, 0), (self.rx, 0))
        self.connect((self.tx, 0), (self.channel_0, 0))


    def get_grid(self):
        return self.grid

    def set_grid(self, grid):
        self.grid = grid
        self.set_layout(GridLayout.load(self.grid))

    def get_tx_endpoint(self):
        return self.tx_endpoint

    def set_tx_endpoint(self, tx_endpoint):
        self.tx_endpoint = tx_endpoint

    def get_rx_endpoint(self):
        return self.rx_endpoint

    def set_rx_endpoint(self, rx_endpoint):
        self.rx_endpoint = rx_endpoint

    def get_feed_endpoint(self):
        return self.feed_endpoint

    def set_feed_endpoint(self, feed_endpoint):
        self.feed_endpoint = feed_endpoint

    def get_snr_db(self):
        return self.snr_db

    def set_snr_db(self, snr_db):
        self.snr_db = snr_db
        self.channel_0.set_snr_db(self.snr_db)

    def get_cfo(self):
        return self.cfo

    def set_cfo(self, cfo):
        self.cfo = cfo
        self.channel_0.set_cfo(self.cfo)

    def get_channel(self):
        return self.channel

    def set_channel(self, channel):
        self.channel = channel

    def get_delay_spread_ns(self):
        return self.delay_spread_ns

    def set_delay_spread_ns(self, delay_spread_ns):
        self.delay_spread_ns = delay_spread_ns

    def get_gap_min(self):
        return self.gap_min

    def set_gap_min(self, gap_min):
        self.gap_min = gap_min

    def get_gap_max(self):
        return self.gap_max

    def set_gap_max(self, gap_max):
        self.gap_max = gap_max

    def get_seed(self):
        return self.seed

    def set_seed(self, seed):
        self.seed = seed

    def get_stats_dir(self):
        return self.stats_dir

    def set_stats_dir(self, stats_dir):
        self.stats_dir = stats_dir

    def get_layout(self):
        return self.layout

    def set_layout(self, layout):
        self.layout = layout



def argument_parser():
    description = 'gsc SISO streaming loopback whose channel realisations (one per frame) come from gsc_phy over ZMQ (Sionna TDL/CDL, RIS) or from local TDL draws; CFO and AWGN. Headless; ends when the frame source sends end-of-stream.'
    parser = ArgumentParser(description=description)
    parser.add_argument(
        "--grid", dest="grid", type=str, default='default',
        help="Set Grid JSON (path or shipped name) [default=%(default)r]")
    parser.add_argument(
        "--tx-endpoint", dest="tx_endpoint", type=str, default='tcp://127.0.0.1:5600',
        help="Set Frames endpoint (the flowgraph connects) [default=%(default)r]")
    parser.add_argument(
        "--rx-endpoint", dest="rx_endpoint", type=str, default='tcp://127.0.0.1:5601',
        help="Set Decoder endpoint (the flowgraph binds) [default=%(default)r]")
    parser.add_argument(
        "--feed-endpoint", dest="feed_endpoint", type=str, default='',
        help="Set Channel realisations endpoint ('' = local TDL draws) [default=%(default)r]")
    parser.add_argument(
        "--snr-db", dest="snr_db", type=eng_float, default=eng_notation.num_to_str(float(20)),
        help="Set Es/N0 (dB) [default=%(default)r]")
    parser.add_argument(
        "--cfo", dest="cfo", type=eng_float, default=eng_notation.num_to_str(float(0.1)),
        help="Set CFO (subcarrier spacings) [default=%(default)r]")
    parser.add_argument(
        "--channel", dest="channel", type=str, default='tdl-a',
        help="Set Local TDL profile (awgn, tdl-a .. tdl-e) [default=%(default)r]")
    parser.add_argument(
        "--delay-spread-ns", dest="delay_spread_ns", type=eng_float, default=eng_notation.num_to_str(float(100)),
        help="Set Delay spread (ns) [default=%(default)r]")
    parser.add_argument(
        "--gap-min", dest="gap_min", type=intx, default=64,
        help="Set Min gap between bursts (samples) [default=%(default)r]")
    parser.add_argument(
        "--gap-max", dest="gap_max", type=intx, default=512,
        help="Set Max gap between bursts (samples) [default=%(default)r]")
    parser.add_argument(
        "--seed", dest="seed", type=intx, default=0,
        help="Set Seed [default=%(default)r]")
    parser.add_argument(
        "--stats-dir", dest="stats_dir", type=str, default='',
        help="Set Folder for the blocks' stats JSON ('' = none) [default=%(default)r]")
    return parser


def main(top_block_cls=gsc_feed_loopback_gen, options=None):
    if options is None:
        options = argument_parser().parse_args()
    tb = top_block_cls(grid=options.grid, tx_endpoint=options.tx_endpoint, rx_endpoint=options.rx_endpoint, feed_endpoint=options.feed_endpoint, snr_db=options.snr_db, cfo=options.cfo, channel=options.channel, delay_spread_ns=options.delay_spread_ns, gap_min=options.gap_min, gap_max=options.gap_max, seed=options.seed, stats_dir=options.stats_dir)

    def sig_handler(sig=None, frame=None):
        tb.stop()
        tb.wait()

        sys.exit(0)

    signal.signal(signal.SIGINT, sig_handler)
    signal.signal(signal.SIGTERM, sig_handler)

    tb.start()

    tb.wait()


if __name__ == '__main__':
    main()
