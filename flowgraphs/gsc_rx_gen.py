#!/usr/bin/env python3
# -*- coding: utf-8 -*-

#
# SPDX-License-Identifier: GPL-3.0
#
# GNU Radio Python Flow Graph
# Title: gsc streaming RX
# Author: gsc
# Description: gsc streaming RX: complex samples in over ZMQ PULL (gr-zeromq with tags, as gsc_tx sends them) -> burst detection, timing, fractional and integer CFO, channel estimation, equalisation -> symbols and noise variances over ZMQ to the decoder service. Runs until stopped (SIGINT/SIGTERM).
# GNU Radio version: 3.10.5.1

from flowgraphs import gsc_gr
from gnuradio import gr
from gnuradio.filter import firdes
from gnuradio.fft import window
import sys
import signal
from argparse import ArgumentParser
from gnuradio.eng_arg import eng_float, intx
from gnuradio import eng_notation
from gnuradio import zeromq




class gsc_rx_gen(gr.top_block):

    def __init__(self, grid='default', iq_endpoint='tcp://127.0.0.1:5602', rx_endpoint='tcp://127.0.0.1:5601', threshold=0.1, stats_dir='', curve_secret='', curve_authorized_dir=''):
        gr.top_block.__init__(self, "gsc streaming RX", catch_exceptions=True)

        ##################################################
        # Parameters
        ##################################################
        self.grid = grid
        self.iq_endpoint = iq_endpoint
        self.rx_endpoint = rx_endpoint
        self.threshold = threshold
        self.stats_dir = stats_dir
        self.curve_secret = curve_secret
        self.curve_authorized_dir = curve_authorized_dir

        ##################################################
        # Blocks
        ##################################################

        self.rx = gsc_gr.ofdm_burst_rx(grid=grid, endpoint=rx_endpoint, bind=True, threshold=threshold, xcorr_threshold=0.35, max_int_cfo=4, time_interp="drift", send_timeout_ms=1000, pdus=False, stats_file=(stats_dir + '/rx.json') if stats_dir else '', curve_secret=curve_secret, curve_authorized_dir=curve_authorized_dir)
        self.iq_in = zeromq.pull_source(gr.sizeof_gr_complex, 1, iq_endpoint, 100, True, (-1))


        ##################################################
        # Connections
        ##################################################
        self.connect((self.iq_in, 0), (self.rx, 0))


    def get_grid(self):
        return self.grid

    def set_grid(self, grid):
        self.grid = grid

    def get_iq_endpoint(self):
        return self.iq_endpoint

    def set_iq_endpoint(self, iq_endpoint):
        self.iq_endpoint = iq_endpoint

    def get_rx_endpoint(self):
        return self.rx_endpoint

    def set_rx_endpoint(self, rx_endpoint):
        self.rx_endpoint = rx_endpoint

    def get_threshold(self):
        return self.threshold

    def set_threshold(self, threshold):
        self.threshold = threshold

    def get_stats_dir(self):
        return self.stats_dir

    def set_stats_dir(self, stats_dir):
        self.stats_dir = stats_dir

    def get_curve_secret(self):
        return self.curve_secret

    def set_curve_secret(self, curve_secret):
        self.curve_secret = curve_secret

    def get_curve_authorized_dir(self):
        return self.curve_authorized_dir

    def set_curve_authorized_dir(self, curve_authorized_dir):
        self.curve_authorized_dir = curve_authorized_dir



def argument_parser():
    description = 'gsc streaming RX: complex samples in over ZMQ PULL (gr-zeromq with tags, as gsc_tx sends them) -> burst detection, timing, fractional and integer CFO, channel estimation, equalisation -> symbols and noise variances over ZMQ to the decoder service. Runs until stopped (SIGINT/SIGTERM).'
    parser = ArgumentParser(description=description)
    parser.add_argument(
        "--grid", dest="grid", type=str, default='default',
        help="Set Grid JSON (path or shipped name) [default=%(default)r]")
    parser.add_argument(
        "--iq-endpoint", dest="iq_endpoint", type=str, default='tcp://127.0.0.1:5602',
        help="Set IQ samples endpoint (the flowgraph connects) [default=%(default)r]")
    parser.add_argument(
        "--rx-endpoint", dest="rx_endpoint", type=str, default='tcp://127.0.0.1:5601',
        help="Set Decoder endpoint (the flowgraph binds) [default=%(default)r]")
    parser.add_argument(
        "--threshold", dest="threshold", type=eng_float, default=eng_notation.num_to_str(float(0.1)),
        help="Set Detection threshold [default=%(default)r]")
    parser.add_argument(
        "--stats-dir", dest="stats_dir", type=str, default='',
        help="Set Folder for the blocks' stats JSON ('' = none) [default=%(default)r]")
    parser.add_argument(
        "--curve-secret", dest="curve_secret", type=str, default='',
        help="Set CurveZMQ secret key of this RX host ('' = none; needed off loopback) [default=%(default)r]")
    parser.add_argument(
        "--curve-authorized-dir", dest="curve_authorized_dir", type=str, default='',
        help="Set Directory of authorised decoder public keys [default=%(default)r]")
    return parser


def main(top_block_cls=gsc_rx_gen, options=None):
    if options is None:
        options = argument_parser().parse_args()
    tb = top_block_cls(grid=options.grid, iq_endpoint=options.iq_endpoint, rx_endpoint=options.rx_endpoint, threshold=options.threshold, stats_dir=options.stats_dir, curve_secret=options.curve_secret, curve_authorized_dir=options.curve_authorized_dir)

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
