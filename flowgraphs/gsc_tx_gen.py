#!/usr/bin/env python3
# -*- coding: utf-8 -*-

#
# SPDX-License-Identifier: GPL-3.0
#
# GNU Radio Python Flow Graph
# Title: gsc streaming TX
# Author: gsc
# Description: gsc streaming TX: frames (data symbols) over ZMQ from the ML side -> the gsc frame on the OFDM grid with pilots and the preamble -> tagged bursts -> complex samples out over ZMQ PUSH (tags passed). Ends when the frame source sends end-of-stream.
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




class gsc_tx_gen(gr.top_block):

    def __init__(self, grid='default', tx_endpoint='tcp://127.0.0.1:5600', iq_endpoint='tcp://127.0.0.1:5602', gap_min=64, gap_max=512, seed=0, idle_zeros=0, stats_dir=''):
        gr.top_block.__init__(self, "gsc streaming TX", catch_exceptions=True)

        ##################################################
        # Parameters
        ##################################################
        self.grid = grid
        self.tx_endpoint = tx_endpoint
        self.iq_endpoint = iq_endpoint
        self.gap_min = gap_min
        self.gap_max = gap_max
        self.seed = seed
        self.idle_zeros = idle_zeros
        self.stats_dir = stats_dir

        ##################################################
        # Blocks
        ##################################################

        self.tx = gsc_gr.ofdm_burst_tx(grid=grid, endpoint=tx_endpoint, bind=False, gap_min=gap_min, gap_max=gap_max, seed=seed, idle_zeros=bool(idle_zeros), stats_file=(stats_dir + '/tx.json') if stats_dir else '')
        self.iq_out = zeromq.push_sink(gr.sizeof_gr_complex, 1, iq_endpoint, 100, True, (-1))


        ##################################################
        # Connections
        ##################################################
        self.connect((self.tx, 0), (self.iq_out, 0))


    def get_grid(self):
        return self.grid

    def set_grid(self, grid):
        self.grid = grid

    def get_tx_endpoint(self):
        return self.tx_endpoint

    def set_tx_endpoint(self, tx_endpoint):
        self.tx_endpoint = tx_endpoint

    def get_iq_endpoint(self):
        return self.iq_endpoint

    def set_iq_endpoint(self, iq_endpoint):
        self.iq_endpoint = iq_endpoint

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

    def get_idle_zeros(self):
        return self.idle_zeros

    def set_idle_zeros(self, idle_zeros):
        self.idle_zeros = idle_zeros

    def get_stats_dir(self):
        return self.stats_dir

    def set_stats_dir(self, stats_dir):
        self.stats_dir = stats_dir



def argument_parser():
    description = 'gsc streaming TX: frames (data symbols) over ZMQ from the ML side -> the gsc frame on the OFDM grid with pilots and the preamble -> tagged bursts -> complex samples out over ZMQ PUSH (tags passed). Ends when the frame source sends end-of-stream.'
    parser = ArgumentParser(description=description)
    parser.add_argument(
        "--grid", dest="grid", type=str, default='default',
        help="Set Grid JSON (path or shipped name) [default=%(default)r]")
    parser.add_argument(
        "--tx-endpoint", dest="tx_endpoint", type=str, default='tcp://127.0.0.1:5600',
        help="Set Frames endpoint (the flowgraph connects) [default=%(default)r]")
    parser.add_argument(
        "--iq-endpoint", dest="iq_endpoint", type=str, default='tcp://127.0.0.1:5602',
        help="Set IQ samples endpoint (the flowgraph binds) [default=%(default)r]")
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
        "--idle-zeros", dest="idle_zeros", type=intx, default=0,
        help="Set Stream zeros between bursts (1 for continuously streaming radios) [default=%(default)r]")
    parser.add_argument(
        "--stats-dir", dest="stats_dir", type=str, default='',
        help="Set Folder for the blocks' stats JSON ('' = none) [default=%(default)r]")
    return parser


def main(top_block_cls=gsc_tx_gen, options=None):
    if options is None:
        options = argument_parser().parse_args()
    tb = top_block_cls(grid=options.grid, tx_endpoint=options.tx_endpoint, iq_endpoint=options.iq_endpoint, gap_min=options.gap_min, gap_max=options.gap_max, seed=options.seed, idle_zeros=options.idle_zeros, stats_dir=options.stats_dir)

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
