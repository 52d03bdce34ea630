/** The handler table (HOUSE-STYLE: dispatch is a table). Keys are canonical method names. */
import type { Method } from '../protocol/methods';
import type { Handler } from './context';
import { authentication, deleteUser, registerUser, userInfo } from './handlers/accounts';
import { addFlow, allFlow } from './handlers/flows';
import { allMessages, deleteMessage, editedMessage, sendMessage } from './handlers/messages';
import { pingPong, subscribe, unsubscribe } from './handlers/session';
import { getUpdate } from './handlers/updates';

export const HANDLERS: Readonly<Record<Method, Handler>> = {
  register_user: registerUser,
  authentication,
  get_update: getUpdate,
  send_message: sendMessage,
  all_messages: allMessages,
  add_flow: addFlow,
  all_flow: allFlow,
  user_info: userInfo,
  delete_user: deleteUser,
  delete_message: deleteMessage,
  edited_message: editedMessage,
  ping_pong: pingPong,
  subscribe,
  unsubscribe,
};
