#!/usr/bin/env python3
# -*- coding: utf-8 -*-

#
# SPDX-License-Identifier: GPL-3.0
#
# GNU Radio Python Flow Graph
# Title: gsc ZeroMQ virtual radio: TX IQ -> impairments -> RX IQ
# Author: gsc
# Description: The air between two gsc processes: PULL the modem TX IQ from tx_endpoint, apply the profile's RF impairments, PUSH to rx_endpoint (TX tags do not cross the air).
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




class zmq_channel(gr.top_block):

    def __init__(self, tx_endpoint="tcp://127.0.0.1:5710", rx_endpoint="tcp://127.0.0.1:5711", samp_rate=2.16e6, impairments='{}'):
        gr.top_block.__init__(self, "gsc ZeroMQ virtual radio: TX IQ -> impairments -> RX IQ", catch_exceptions=True)

        ##################################################
        # Parameters
        ##################################################
        self.tx_endpoint = tx_endpoint
        self.rx_endpoint = rx_endpoint
        self.samp_rate = samp_rate
        self.impairments = impairments

        ##################################################
        # Blocks
        ##################################################

        self.zmq_source = zeromq.pull_source(gr.sizeof_gr_complex, 1, tx_endpoint, 100, True, (-1))
        self.zmq_sink = zeromq.push_sink(gr.sizeof_gr_complex, 1, rx_endpoint, 100, True, (-1))
        self.channel = gr_blocks.impairments_cc(impairments, samp_rate)


        ##################################################
        # Connections
        ##################################################
        self.connect((self.channel, 0), (self.zmq_sink, 0))
        self.connect((self.zmq_source, 0), (self.channel, 0))


    def get_tx_endpoint(self):
        return self.tx_endpoint

    def set_tx_endpoint(self, tx_endpoint):
        self.tx_endpoint = tx_endpoint

    def get_rx_endpoint(self):
        return self.rx_endpoint

    def set_rx_endpoint(self, rx_endpoint):
        self.rx_endpoint = rx_endpoint

    def get_samp_rate(self):
        return self.samp_rate

    def set_samp_rate(self, samp_rate):
        self.samp_rate = samp_rate

    def get_impairments(self):
        return self.impairments

    def set_impairments(self, impairments):
        self.impairments = impairments



def argument_parser():
    description = "The air between two gsc processes: PULL the modem TX IQ from tx_endpoint, apply the profile's RF impairments, PUSH to rx_endpoint (TX tags do not cross the air)."
    parser = ArgumentParser(description=description)
    parser.add_argument(
        "--tx-endpoint", dest="tx_endpoint", type=str, default="tcp://127.0.0.1:5710",
        help="Set Modem TX IQ endpoint [default=%(default)r]")
    parser.add_argument(
        "--rx-endpoint", dest="rx_endpoint", type=str, default="tcp://127.0.0.1:5711",
        help="Set RX IQ endpoint [default=%(default)r]")
    parser.add_argument(
        "--samp-rate", dest="samp_rate", type=eng_float, default=eng_notation.num_to_str(float(2.16e6)),
        help="Set Sample rate (S/s) [default=%(default)r]")
    parser.add_argument(
        "--impairments", dest="impairments", type=str, default='{}',
        help="Set Impairments (JSON) [default=%(default)r]")
    return parser


def main(top_block_cls=zmq_channel, options=None):
    if options is None:
        options = argument_parser().parse_args()
    tb = top_block_cls(tx_endpoint=options.tx_endpoint, rx_endpoint=options.rx_endpoint, samp_rate=options.samp_rate, impairments=options.impairments)

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
