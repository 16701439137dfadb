#!/usr/bin/env python3
# -*- coding: utf-8 -*-

#
# SPDX-License-Identifier: GPL-3.0
#
# GNU Radio Python Flow Graph
# Title: gsc SigMF file radio TX: ZeroMQ IQ -> recording
# Author: gsc
# Description: Records the modem TX IQ (PULL from zmq_endpoint) into a SigMF recording; the metadata is written when the flowgraph stops.
# GNU Radio version: 3.10.5.1

from flowgraphs.device import gr_blocks
from gnuradio import gr
from gnuradio.filter import firdes
from gnuradio.fft import window
import sys
import signal
from argparse import ArgumentParser
from gnuradio.eng_arg import eng_float, intx
from gnuradio import eng_notation
from gnuradio import zeromq




class sigmf_tx(gr.top_block):

    def __init__(self, path="recordings/gsc-tx", samp_rate=2.16e6, center_freq=2.45e9, zmq_endpoint="tcp://127.0.0.1:5710"):
        gr.top_block.__init__(self, "gsc SigMF file radio TX: ZeroMQ IQ -> recording", catch_exceptions=True)

        ##################################################
        # Parameters
        ##################################################
        self.path = path
        self.samp_rate = samp_rate
        self.center_freq = center_freq
        self.zmq_endpoint = zmq_endpoint

        ##################################################
        # Blocks
        ##################################################

        self.zmq_source = zeromq.pull_source(gr.sizeof_gr_complex, 1, zmq_endpoint, 100, True, (-1))
        self.sigmf_sink = gr_blocks.sigmf_sink_c(path, samp_rate, center_freq, 'gsc modem TX (SigMF file radio)', False)


        ##################################################
        # Connections
        ##################################################
        self.connect((self.zmq_source, 0), (self.sigmf_sink, 0))


    def get_path(self):
        return self.path

    def set_path(self, path):
        self.path = path

    def get_samp_rate(self):
        return self.samp_rate

    def set_samp_rate(self, samp_rate):
        self.samp_rate = samp_rate

    def get_center_freq(self):
        return self.center_freq

    def set_center_freq(self, center_freq):
        self.center_freq = center_freq

    def get_zmq_endpoint(self):
        return self.zmq_endpoint

    def set_zmq_endpoint(self, zmq_endpoint):
        self.zmq_endpoint = zmq_endpoint



def argument_parser():
    description = 'Records the modem TX IQ (PULL from zmq_endpoint) into a SigMF recording; the metadata is written when the flowgraph stops.'
    parser = ArgumentParser(description=description)
    parser.add_argument(
        "--path", dest="path", type=str, default="recordings/gsc-tx",
        help="Set Recording [default=%(default)r]")
    parser.add_argument(
        "--samp-rate", dest="samp_rate", type=eng_float, default=eng_notation.num_to_str(float(2.16e6)),
        help="Set Sample rate (S/s) [default=%(default)r]")
    parser.add_argument(
        "--center-freq", dest="center_freq", type=eng_float, default=eng_notation.num_to_str(float(2.45e9)),
        help="Set Centre frequency (Hz) [default=%(default)r]")
    parser.add_argument(
        "--zmq-endpoint", dest="zmq_endpoint", type=str, default="tcp://127.0.0.1:5710",
        help="Set Modem TX IQ endpoint [default=%(default)r]")
    return parser


def main(top_block_cls=sigmf_tx, options=None):
    if options is None:
        options = argument_parser().parse_args()
    tb = top_block_cls(path=options.path, samp_rate=options.samp_rate, center_freq=options.center_freq, zmq_endpoint=options.zmq_endpoint)

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
