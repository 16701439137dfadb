#!/usr/bin/env python3
# -*- coding: utf-8 -*-

#
# SPDX-License-Identifier: GPL-3.0
#
# GNU Radio Python Flow Graph
# Title: gsc SigMF file radio RX: recording -> ZeroMQ IQ
# Author: gsc
# Description: Replays a SigMF recording into a PUSH sink bound at zmq_endpoint (back-pressure paces it), then ends.
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




class sigmf_rx(gr.top_block):

    def __init__(self, path="recordings/gsc-capture", repeat=False, zmq_endpoint="tcp://127.0.0.1:5711"):
        gr.top_block.__init__(self, "gsc SigMF file radio RX: recording -> ZeroMQ IQ", catch_exceptions=True)

        ##################################################
        # Parameters
        ##################################################
        self.path = path
        self.repeat = repeat
        self.zmq_endpoint = zmq_endpoint

        ##################################################
        # Blocks
        ##################################################

        self.zmq_sink = zeromq.push_sink(gr.sizeof_gr_complex, 1, zmq_endpoint, 100, True, (-1))
        self.sigmf_source = gr_blocks.sigmf_source_c(path, repeat, True)


        ##################################################
        # Connections
        ##################################################
        self.connect((self.sigmf_source, 0), (self.zmq_sink, 0))


    def get_path(self):
        return self.path

    def set_path(self, path):
        self.path = path

    def get_repeat(self):
        return self.repeat

    def set_repeat(self, repeat):
        self.repeat = repeat

    def get_zmq_endpoint(self):
        return self.zmq_endpoint

    def set_zmq_endpoint(self, zmq_endpoint):
        self.zmq_endpoint = zmq_endpoint



def argument_parser():
    description = 'Replays a SigMF recording into a PUSH sink bound at zmq_endpoint (back-pressure paces it), then ends.'
    parser = ArgumentParser(description=description)
    parser.add_argument(
        "--path", dest="path", type=str, default="recordings/gsc-capture",
        help="Set Recording [default=%(default)r]")
    parser.add_argument(
        "--zmq-endpoint", dest="zmq_endpoint", type=str, default="tcp://127.0.0.1:5711",
        help="Set RX IQ endpoint [default=%(default)r]")
    return parser


def main(top_block_cls=sigmf_rx, options=None):
    if options is None:
        options = argument_parser().parse_args()
    tb = top_block_cls(path=options.path, zmq_endpoint=options.zmq_endpoint)

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
